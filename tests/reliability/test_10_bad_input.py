"""Guarantee 10: bad input never corrupts state, and never runs as code.

Hypothesis throws hostile values at ``lifecycle.order``, ``catalog.add_server`` and
``catalog.add_product``: internationalised, overlong and dotted domains, spaces, shell
metacharacters, Jinja2 (``{{ }}``, ``{% %}``) and YAML (``!!python/object``) syntax, NUL bytes,
odd usernames, emails, package names and credential values. Each is refused with a
ValidationError naming a field, and then no row changed; or it is accepted, and then it travels
verbatim and only as data: the rendered playbook text is the same whatever the input, and in
the inventory and secrets files every such string is marked unsafe, so Ansible never templates
it (nor reads "8.3" as a number). Two real runs prove the last point: an API token and a suspend reason that are
Jinja2 lookups calling a shell reach the panel as literal text, and the shell never runs.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings as hsettings, strategies as st

from provisiond import catalog, execute, lifecycle, render
from provisiond.errors import Conflict, ValidationError
from provisiond.models import MODELS, Job, Service
from provisiond.sandbox.cpanel import WhmSimulator
from provisiond.worker import Worker, connection_vars

NASTY = [
    "{{ 7*7 }}", "{{ lookup('pipe', 'id') }}", "{% for x in range(9) %}x{% endfor %}", "{# c #}",
    "!!python/object/apply:os.system ['id']", "!unsafe x", "&anchor *alias", "--- |\n  x", "key: value",
    "$(id)", "`id`", "; id", "&& id", "| id", "> /tmp/x", "'; DROP TABLE service; --", "%s%n%x",
    "bücher.example", "xn--bcher-kva.example", "ß.de", "例え.テスト", "a" * 64 + ".com", "a..com",
    "-a.com", "a-.com", "shop example.com", " shop.example.com", "shop.example.com.", "shop.example.com\n",
    "a\x00b.com", "1.2.3.4", "[::1]", "localhost", "", " ", "\t", "é@example.com", "a@b", "a@b.c",
    "x@[127.0.0.1]", "root", "test1", "Admin", "a" * 17, "0abc", "user\u200bname", "../../etc/passwd",
    "basic; id", "basic\nplan", "{{basic}}", "pro", "basic", "shop.example.com", "me@shop.example.com",
    "a+b%c@example.com", "x-1.shop.example.co.uk", "whm.{{ 7*7 }}.net", "whm.$(id).net", "user_name",
]
# Odd but valid: what a careful door lets through, and must then carry verbatim.
ODD = ["bücher.example", "例え.テスト", "a" * 63 + ".com", "x-1.shop.example.co.uk", "xn--bcher-kva.example",
       "UPPER.Example.COM", "a+b%c@example.com", "first.last@sub.example.co.uk", "x_y-z@EXAMPLE.com",
       "shop", "abc123", "z" * 16, "INV-1", "a:b.c_d-e", "Basic Plan+", "whm-2.example.net"]
nasty = st.one_of(st.sampled_from(NASTY), st.sampled_from(ODD), st.text(max_size=70),
                  st.builds("".join, st.lists(st.sampled_from(NASTY + [".", "@", "-", "x"]), max_size=4)))
maybe = st.one_of(st.none(), nasty)


@st.composite
def hostile(draw, valid: dict, optional: tuple = (), fixed: tuple = ()) -> dict:
    """``valid`` arguments with one or two of them (not the ``fixed``) replaced by hostile values."""
    values = dict(valid)
    fields = sorted(set(values) - set(fixed))
    for field in draw(st.sets(st.sampled_from(fields), min_size=1, max_size=2)):
        values[field] = draw(maybe if field in optional else nasty)
    return values


ORDER = {"product": "starter", "domain": "shop.example.com", "email": "me@shop.example.com",
         "username": None, "ref": None}
HSETTINGS = dict(max_examples=60, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def row_counts() -> dict[str, int]:
    return {model.__name__: model.select().count() for model in MODELS}


class Tagged(str):
    """A string the inventory or secrets file marked unsafe ({"__ansible_unsafe": ...})."""


def tagged(data):
    """The run file's JSON with each unsafe string as a ``Tagged``."""
    if isinstance(data, dict):
        if set(data) == {execute.UNSAFE}:
            return Tagged(data[execute.UNSAFE])
        return {k: tagged(v) for k, v in data.items()}
    if isinstance(data, list):
        return [tagged(v) for v in data]
    return data


def untagged_strings(data, path="") -> list[str]:
    """Paths of the strings in ``data`` that are not marked unsafe."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in untagged_strings(v, f"{path}.{k}")]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in untagged_strings(v, f"{path}[{i}]")]
    return [path] if isinstance(data, str) and not isinstance(data, Tagged) else []


def rendered_files(spec: execute.RunSpec) -> tuple[dict, dict]:
    """The inventory and the secrets vars file as execute.run writes them, read back."""
    return (tagged(json.loads(execute.inventory_text(spec))), tagged(json.loads(execute.secrets_text(spec))))


@pytest.fixture
def worker(settings, vault):
    w = Worker(settings, vault, owner="fuzz")
    yield w
    w.shutdown()


def check_run_spec(registry, vault, worker, job: Job) -> None:
    server = job.server
    panel = registry.get(server.panel)
    credentials = catalog.open_credentials(server.credentials, vault, server.name)
    account = worker._account(job)
    bland = render.Account(account.host, dict(account.vars, domain="bland.example.com", email="b@bland.example.com",
                                              username="bland", ref="BLAND-1"), account.secrets)
    spec, reference = (render.build(panel, job.action, connection_vars(panel, server, credentials), credentials,
                                    [a], timeout=60, forks=1) for a in (account, bland))
    assert spec.playbook == reference.playbook  # the input never shapes the playbook text
    inventory, secrets = rendered_files(spec)
    host = inventory["all"]["hosts"][render.host_name(job.id)]
    account = host["account"]
    assert untagged_strings(account) == [] and untagged_strings(host["panel"]) == []
    assert untagged_strings(secrets) == []
    service = Service.get_by_id(job.service_id)
    assert (account["domain"], account["email"], account["username"], account["ref"]) == (
        service.domain, service.email, service.username, service.ref)  # verbatim


@given(args=hostile(ORDER, optional=("username", "ref"), fixed=("product",)))
@hsettings(**HSETTINGS)
def test_orders_are_refused_by_field_or_carried_verbatim_as_data(shop, registry, vault, worker, args):
    email, username, ref = args["email"], args["username"], args["ref"]
    before = row_counts()
    try:
        service, job = lifecycle.order(registry, vault, **args)
    except Conflict:  # a ref ordered again with other data: refused, nothing written
        event("conflict")
        assert ref is not None and Service.select().where(Service.ref == ref).exists()
        assert row_counts() == before
        return
    except ValidationError as refused:
        event(f"refused: {refused.field}")
        assert refused.field in {"product", "domain", "email", "username", "ref"}, refused
        assert str(refused).startswith(refused.field + ": ")
        assert row_counts() == before
        return
    if before["Service"] == row_counts()["Service"]:  # a ref ordered again: the first order back
        assert row_counts() == before and service.ref == ref
        return
    assert job is not None
    event("accepted")
    assert service.email == email and (username is None or service.username == username)
    check_run_spec(registry, vault, worker, job)


SERVER = {"name": "whm-fuzz", "host": "whm.example.net", "token": "tok-123456",
          "user": None, "scheme": None, "verify": None}


@given(args=hostile(SERVER, optional=("user", "scheme", "verify")),
       port=st.one_of(st.none(), st.integers(-5, 70000)))
@hsettings(**HSETTINGS)
def test_servers_are_refused_by_field_or_stored_verbatim(database, registry, vault, args, port):
    if not catalog.ServerGroup.select().exists():
        catalog.add_group("web")
    name, host, token = args["name"], args["host"], args["token"]
    if name == SERVER["name"]:
        name = f"whm-{uuid.uuid4().hex[:8]}"  # a fresh valid name, so more than the first is accepted
    credentials = {"api_token": token}
    for field, value in (("username", args["user"]), ("scheme", args["scheme"]), ("verify_tls", args["verify"])):
        if value is not None:
            credentials[field] = value
    before = row_counts()
    try:
        server = catalog.add_server(registry, vault, name=name, panel="cpanel", host=host, port=port,
                                    group_name="web", credentials=credentials)
    except ValidationError as refused:
        event(f"refused: {refused.field}")
        assert refused.field.split(".")[0] in {"name", "host", "port", "credential", "group"}, refused
        assert row_counts() == before
        return
    event("accepted")
    # a hostname or an IP literal: nothing SSH or a URL could read as an option, user or path
    assert re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", host) and not host.startswith("-") and "@" not in host, host
    stored = catalog.server(name)
    assert (stored.name, stored.host, stored.port) == (name, host, port)
    assert stored.credentials["api_token"].startswith(catalog.ENCRYPTED)
    # The token is stored only encrypted; a non-secret field the fuzzer gave the same text (the
    # username "localhost" as well as the token) keeps its own copy, as given.
    others = {k: v for k, v in stored.credentials.items() if k == "api_token" or v != token}
    assert len(token) < 6 or token not in json.dumps(others)  # short ones may occur by chance
    assert catalog.open_credentials(stored.credentials, vault, name)["api_token"] == token
    assert server.id == stored.id


@given(args=hostile({"name": "plan-fuzz", "package": "basic"}),
       quota=st.one_of(st.none(), st.integers(-5, 10**6), nasty), extra=st.dictionaries(nasty, nasty, max_size=2))
@hsettings(**HSETTINGS)
def test_products_are_refused_by_field_or_stored_verbatim(database, registry, args, quota, extra):
    if not catalog.ServerGroup.select().exists():
        catalog.add_group("web")
    name, package = args["name"], args["package"]
    if name == "plan-fuzz":
        name = f"plan-{uuid.uuid4().hex[:8]}"
    config = dict(extra)
    if quota is not None:
        config["quota"] = quota
    before = row_counts()
    try:
        product = catalog.add_product(registry, name=name, panel="cpanel", group_name="web", package=package,
                                      config=config)
    except ValidationError as refused:
        event(f"refused: {refused.field.split('.')[0]}")
        assert refused.field.split(".")[0] in {"name", "package", "config"}, refused
        assert row_counts() == before
        return
    event("accepted")
    assert (product.name, product.package) == (name, package)


def test_jinja_in_a_credential_and_a_suspend_reason_reaches_the_panel_as_text(database, registry, vault,
                                                                              worker, request):
    marker = f"/tmp/p{uuid.uuid4().hex[:6]}"  # short: a status reason holds 64 characters
    request.addfinalizer(lambda: [p.unlink() for p in Path("/tmp").glob(Path(marker).name + "*")])
    token = "{{ lookup('pipe', 'touch %s-token') }}" % marker
    reason = "{{ lookup('pipe','touch %s-r')}}{%% if 1 %%}!{%% endif %%}" % marker
    assert len(reason) <= 64
    with WhmSimulator(token=token) as whm:
        catalog.add_group("web")
        catalog.add_server(registry, vault, name="whm-jinja", panel="cpanel", host=whm.host, port=whm.port,
                           group_name="web", credentials={"api_token": token, "scheme": "http"})
        catalog.add_product(registry, name="starter", panel="cpanel", group_name="web", package="basic")
        service, job = lifecycle.order(registry, vault, product="starter", domain="jinja.example.com",
                                       email="me@jinja.example.com")
        worker.tick(wait=True)
        assert Job.get_by_id(job.id).status == "succeeded", Job.get_by_id(job.id).last_error
        job = lifecycle.request(registry, vault, service.ref, "suspend", reason=reason)
        worker.tick(wait=True)
        assert Job.get_by_id(job.id).status == "succeeded", Job.get_by_id(job.id).last_error
        account = whm.accounts[service.username]
    assert account.suspended and account.suspendreason == reason  # verbatim, not rendered
    assert not list(Path("/tmp").glob(Path(marker).name + "*"))    # no shell ever ran


def test_an_overlong_suspend_reason_is_refused_at_the_door(shop, registry, vault):
    service, create = lifecycle.order(registry, vault, product="starter", domain="long.example.com",
                                      email="me@long.example.com")
    Job.update(status="succeeded").where(Job.id == create.id).execute()
    Service.update(status="active").where(Service.id == service.id).execute()
    before = row_counts()
    with pytest.raises(ValidationError) as refused:
        lifecycle.request(registry, vault, service.ref, "suspend", reason="r" * 65)
    assert refused.value.field == "reason" and row_counts() == before


LONG_EMAIL = "a" * 60 + "@" + "b" * 236 + ".com"   # 300 characters: the email column holds 254


@pytest.mark.parametrize("argv, field", [
    (["service", "order", "--product", "starter", "--domain", "long.example.com", "--email", LONG_EMAIL], "email"),
    (["service", "order", "--product", "starter", "--domain", "long.example.com", "--email", "a@b.co",
      "--username", "u" * 70], "username"),
    (["server", "add", "whm-long", "--panel", "cpanel", "--host", ("h" * 60 + ".") * 5 + "net",
      "--group", "web", "--credential", "api_token=x"], "host"),
    (["server", "add", "whm-evil", "--panel", "cpanel", "--host", "a.-oProxyCommand=x",
      "--group", "web", "--credential", "api_token=x"], "host"),
    (["service", "order", "--product", "starter", "--domain", "exa\u200bmple.com", "--email", "a@b.co"], "domain"),
    (["server", "add", "whm-big", "--panel", "cpanel", "--host", "whm.example.net", "--max-accounts", str(2**40),
      "--group", "web", "--credential", "api_token=x"], "max_accounts"),
])
def test_the_cli_gives_one_line_field_errors_for_overlong_values_on_every_database(shop, settings, capsys,
                                                                                     argv, field):
    """On PostgreSQL a 300-character email was a DataError traceback: every stored field is
    bounded at the door, on SQLite (which would store it) and PostgreSQL alike."""
    from provisiond import cli
    before = row_counts()
    code = cli.main(["--home", str(settings.home), "--database-url", settings.database_url, *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"provisiond: error: {field}: ") and len(err.splitlines()) == 1, err
    assert row_counts() == before
