"""Guarantee 10: bad input never corrupts state, and never runs as code.

Hypothesis throws hostile values at ``lifecycle.order``, ``catalog.add_server`` and
``catalog.add_product``: internationalised, overlong and dotted domains, spaces, shell
metacharacters, Jinja2 (``{{ }}``, ``{% %}``) and YAML (``!!python/object``) syntax, NUL bytes,
odd usernames, emails, package names and credential values. Each is refused with a
ValidationError naming a field, and then no row changed; or it is accepted, and then it travels
verbatim and only as data: the rendered playbook text is the same whatever the input, and in
the inventory and secrets files every such string is tagged ``!unsafe``, so Ansible never
templates it. Two real runs prove the last point: an API token and a suspend reason that are
Jinja2 lookups calling a shell reach the panel as literal text, and the shell never runs.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from provisiond import catalog, execute, lifecycle, render
from provisiond.errors import ValidationError
from provisiond.models import MODELS, Job, Service
from provisiond.sandbox.cpanel import WhmSimulator
from provisiond.worker import Worker, connection_vars
from tests.conftest import WHM_TOKEN

NASTY = [
    "{{ 7*7 }}", "{{ lookup('pipe', 'id') }}", "{% for x in range(9) %}x{% endfor %}", "{# c #}",
    "!!python/object/apply:os.system ['id']", "!unsafe x", "&anchor *alias", "--- |\n  x", "key: value",
    "$(id)", "`id`", "; id", "&& id", "| id", "> /tmp/x", "'; DROP TABLE service; --", "%s%n%x",
    "bücher.example", "xn--bcher-kva.example", "ß.de", "例え.テスト", "a" * 64 + ".com", "a..com",
    "-a.com", "a-.com", "shop example.com", " shop.example.com", "shop.example.com.", "shop.example.com\n",
    "a\x00b.com", "1.2.3.4", "[::1]", "localhost", "", " ", "\t", "é@example.com", "a@b", "a@b.c",
    "x@[127.0.0.1]", "root", "test1", "Admin", "a" * 17, "0abc", "user\u200bname", "../../etc/passwd",
    "basic; id", "basic\nplan", "{{basic}}", "pro", "basic", "shop.example.com", "me@shop.example.com",
]
nasty = st.one_of(st.sampled_from(NASTY), st.text(max_size=70),
                  st.builds("".join, st.lists(st.sampled_from(NASTY + [".", "@", "-", "x"]), max_size=4)))
maybe = st.one_of(st.none(), nasty)
HSETTINGS = dict(max_examples=60, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def row_counts() -> dict[str, int]:
    return {model.__name__: model.select().count() for model in MODELS}


class Tagged(str):
    """A string the inventory or secrets file tagged !unsafe."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: Tagged(loader.construct_scalar(node)))


def untagged_strings(data, path="") -> list[str]:
    """Paths of the strings in ``data`` that are not tagged !unsafe."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in untagged_strings(v, f"{path}.{k}")]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in untagged_strings(v, f"{path}[{i}]")]
    return [path] if isinstance(data, str) and not isinstance(data, Tagged) else []


def rendered_files(spec: execute.RunSpec) -> tuple[dict, dict]:
    """The inventory and the secrets vars file as execute.run writes them, read back."""
    return (yaml.load(execute.inventory_text(spec), Loader=_Loader),
            yaml.load(execute.secrets_text(spec), Loader=_Loader))


@pytest.fixture
def worker(settings, vault):
    w = Worker(settings, vault, owner="fuzz")
    yield w
    w.shutdown()


def check_run_spec(registry, vault, worker, job: Job, values: list[str]) -> None:
    server = job.server
    panel = registry.get(server.panel)
    credentials = catalog.open_credentials(server.credentials, vault, server.name)
    spec = render.build(panel, job.action, connection_vars(panel, server, credentials), credentials,
                        [worker._account(job)], timeout=60, forks=1)
    assert spec.playbook == render.render_playbook(panel, job.action)  # input never shapes the text
    for value in values:
        assert value not in spec.playbook or value in {"basic", "pro", "root"}
    inventory, secrets = rendered_files(spec)
    account = inventory["all"]["hosts"][render.host_name(job.id)]["account"]
    assert untagged_strings(account) == [] and untagged_strings(inventory["all"]["vars"]["panel"]) == []
    assert untagged_strings(secrets) == []
    service = Service.get_by_id(job.service_id)
    assert (account["domain"], account["email"], account["username"], account["ref"]) == (
        service.domain, service.email, service.username, service.ref)  # verbatim


@given(product=st.one_of(st.just("starter"), nasty), domain=nasty, email=nasty, username=maybe, ref=maybe)
@hsettings(**HSETTINGS)
def test_orders_are_refused_by_field_or_carried_verbatim_as_data(shop, registry, vault, worker,
                                                                 product, domain, email, username, ref):
    before = row_counts()
    try:
        service, job = lifecycle.order(registry, vault, product=product, domain=domain, email=email,
                                       username=username, ref=ref)
    except ValidationError as refused:
        assert refused.field in {"product", "domain", "email", "username", "ref"}, refused
        assert str(refused).startswith(refused.field + ": ")
        assert row_counts() == before
        return
    if job is None:  # the same ref ordered again: the first order's service, nothing new
        assert row_counts() == before
        return
    assert service.email == email and (username is None or service.username == username)
    check_run_spec(registry, vault, worker, job, [domain, email, username or "", ref or ""])


@given(name=nasty, host=nasty, port=st.one_of(st.none(), st.integers(-5, 70000)), token=nasty,
       user=maybe, scheme=maybe, verify=st.one_of(st.none(), st.booleans(), nasty))
@hsettings(**HSETTINGS)
def test_servers_are_refused_by_field_or_stored_verbatim(database, registry, vault, name, host, port, token,
                                                        user, scheme, verify):
    if not catalog.ServerGroup.select().exists():
        catalog.add_group("web")
    credentials = {"api_token": token}
    for field, value in (("username", user), ("scheme", scheme), ("verify_tls", verify)):
        if value is not None:
            credentials[field] = value
    before = row_counts()
    try:
        server = catalog.add_server(registry, vault, name=name, panel="cpanel", host=host, port=port,
                                    group_name="web", credentials=credentials)
    except ValidationError as refused:
        assert refused.field.split(".")[0] in {"name", "host", "port", "credentials", "group"}, refused
        assert row_counts() == before
        return
    stored = catalog.server(name)
    assert (stored.name, stored.host, stored.port) == (name, host, port)
    assert token not in json.dumps(stored.credentials) or token in ("", "enc:")
    assert catalog.open_credentials(stored.credentials, vault, name)["api_token"] == token
    assert server.id == stored.id


@given(name=nasty, package=nasty, quota=st.one_of(st.none(), st.integers(-5, 10**6), nasty),
       extra=st.dictionaries(nasty, nasty, max_size=2))
@hsettings(**HSETTINGS)
def test_products_are_refused_by_field_or_stored_verbatim(database, registry, name, package, quota, extra):
    if not catalog.ServerGroup.select().exists():
        catalog.add_group("web")
    config = dict(extra)
    if quota is not None:
        config["quota"] = quota
    before = row_counts()
    try:
        product = catalog.add_product(registry, name=name, panel="cpanel", group_name="web", package=package,
                                      config=config)
    except ValidationError as refused:
        assert refused.field.split(".")[0] in {"name", "package", "config"}, refused
        assert row_counts() == before
        return
    assert (product.name, product.package) == (name, package)


def test_jinja_in_a_credential_and_a_suspend_reason_reaches_the_panel_as_text(database, registry, vault,
                                                                              worker, tmp_path):
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    token = "{{ lookup('pipe', 'touch %s-token') }}" % marker
    reason = "{{ lookup('pipe', 'touch %s-reason') }}{%% if true %%}!{%% endif %%}" % marker
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
    assert not list(Path(tmp_path).glob("pwned-*"))                 # no shell ever ran
    assert WHM_TOKEN != token
