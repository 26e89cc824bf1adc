"""`provisiond service import FILE.csv` and `POST /v1/services/import`: services a billing system
already has, recorded without a panel call; every row checked, nothing written on a problem."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from provisiond import api, catalog, lifecycle, tokens
from provisiond.models import AuditEntry, Job, Server, Service

HEADER = "ref,product,server,username,domain,email,paid_until,status\n"
GOOD = (HEADER
        + "WHMCS-1,starter,whm1,alice,alice.example.com,alice@example.com,2027-01-31,active\n"
        + "WHMCS-2,starter,whm1,bobshop,bob.example.com,bob@example.com,,suspended\n"
        + "WHMCS-3,starter,whm1,carol,carol.example.com,carol@example.com,2026-12-31,\n")


@pytest.fixture
def csv_file(tmp_path):
    def write(text: str, name: str = "services.csv"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write


@pytest.fixture
def hestia(cpanel_setup, registry, vault):
    """A HestiaCP server and product in the same group, to mix panels up."""
    catalog.add_server(registry, vault, name="hestia1", panel="hestia", host="hestia1.example.net",
                       group_name="web", credentials={"access_key": "A" * 20, "secret_key": "s" * 40})
    return catalog.add_product(registry, name="hestia-basic", panel="hestia", group_name="web",
                               package="default")


def test_a_good_file_is_imported_without_a_panel_call_and_audited(cpanel_setup, run, csv_file, whm):
    code, out, err = run("service", "import", csv_file(GOOD))
    assert code == 0, err
    assert out.strip() == "imported 3 services (2 active, 1 suspended) on whm1 (3)"

    code, out, _ = run("service", "show", "WHMCS-1", "--json")
    shown = json.loads(out)
    assert code == 0
    assert {k: shown[k] for k in ("ref", "product", "server", "username", "domain", "email", "status",
                                  "paid_until", "package", "jobs")} == {
        "ref": "WHMCS-1", "product": "starter", "server": "whm1", "username": "alice",
        "domain": "alice.example.com", "email": "alice@example.com", "status": "active",
        "paid_until": "2027-01-31", "package": "basic", "jobs": []}
    suspended = json.loads(run("service", "show", "WHMCS-2", "--json")[1])
    assert (suspended["status"], suspended["status_reason"], suspended["paid_until"]) == ("suspended", "imported", None)
    assert json.loads(run("service", "show", "WHMCS-3", "--json")[1])["status"] == "active"  # blank: active
    assert Job.select().count() == 0 and whm.accounts == {}  # the panel was not called

    [entry] = AuditEntry.select().where(AuditEntry.action == "service.import")
    assert entry.actor.startswith("cli:") and entry.subject == "import:services.csv"
    assert entry.detail["services"] == 3 and entry.detail["by_status"] == {"active": 2, "suspended": 1}
    assert entry.detail["by_server"] == {"whm1": 3}


def test_imported_services_count_toward_the_servers_capacity(cpanel_setup, run, csv_file, registry, vault):
    Server.update(max_accounts=3).execute()
    assert run("service", "import", csv_file(GOOD))[0] == 0
    service, job = lifecycle.order(registry, vault, product="starter", domain="new.example.com",
                                   email="o@new.example.com")
    assert job is None and service.pending_reason == "no capacity in group web"


def test_a_file_that_fills_a_server_beyond_its_limit_is_imported_with_a_warning(cpanel_setup, run, csv_file):
    Server.update(max_accounts=2).execute()
    code, out, _ = run("service", "import", csv_file(GOOD))
    assert code == 0 and Service.select().count() == 3
    assert "warning: server whm1 holds 3 services, more than its max_accounts 2" in out


def test_two_bad_rows_are_both_reported_and_nothing_is_written(cpanel_setup, run, csv_file):
    text = (HEADER
            + "WHMCS-1,starter,whm1,alice,alice.example.com,alice@example.com,2027-01-31,active\n"
            + "WHMCS-2,starter,whm1,bobshop,bob.example.com,bob@example.com,2025-13-01,active\n"
            + "WHMCS-3,starter,whm1,carol,carol.example.com,carol@example.com,,active\n"
            + "WHMCS-4,gold,whm1,dave,dave.example.com,not-an-email,,active\n")
    code, out, err = run("service", "import", csv_file(text))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "row 3: paid_until: '2025-13-01' is not a date (YYYY-MM-DD)",
        "row 5: product: unknown product 'gold'",
        "row 5: email: 'not-an-email' is not a valid email address",
        "provisiond: error: file: 3 problem(s) in 2 row(s); nothing was imported"]
    assert Service.select().count() == 0 and AuditEntry.select().count() == 0

    code, out, _ = run("service", "import", csv_file(text), "--json")
    assert code == 2 and json.loads(out) == {"imported": 0, "errors": [
        {"row": 3, "field": "paid_until", "message": "'2025-13-01' is not a date (YYYY-MM-DD)"},
        {"row": 5, "field": "product", "message": "unknown product 'gold'"},
        {"row": 5, "field": "email", "message": "'not-an-email' is not a valid email address"}]}
    assert Service.select().count() == 0


def test_each_check_names_its_row_and_field(cpanel_setup, hestia, run, csv_file, registry, vault):
    lifecycle.order(registry, vault, product="starter", domain="taken.example.com", email="o@taken.example.com",
                    username="taken", ref="INV-9")
    rows = [
        "WHMCS-1,starter,whm1,alice,alice.example.com,a@example.com,,active",      # row 2: fine
        "WHMCS-1,starter,whm1,alice2,alice2.example.com,a@example.com,,active",    # row 3: ref again
        "INV-9,starter,whm1,zed,zed.example.com,z@example.com,,active",            # row 4: ref in the database
        "WHMCS-5,starter,whm1,taken,other.example.com,o@example.com,,active",      # row 5: username on whm1
        "WHMCS-6,starter,whm1,alice,alice3.example.com,a@example.com,,active",     # row 6: username again
        "WHMCS-7,starter,whm1,Gina,gina.example.com,g@example.com,,active",        # row 7: panel's rules
        "WHMCS-8,starter,whm1,hank,taken.example.com,h@example.com,,active",       # row 8: live domain
        "WHMCS-9,starter,whm1,ivan,ALICE.example.com,i@example.com,,active",       # row 9: domain again
        "WHMCS-10,hestia-basic,whm1,judy,judy.example.com,j@example.com,,active",  # row 10: panels differ
        "WHMCS-11,starter,whm9,kim,kim.example.com,k@example.com,,active",         # row 11: no such server
        "WHMCS-12,starter,whm1,leo,leo.example.com,l@example.com,,closed",         # row 12: status
        "WHMCS-13,starter,whm1,,mia.example.com,m@example.com,,active",            # row 13: blank username
        "WHMCS-14,starter,whm1,ned,ned.example.com",                               # row 14: too few values
        "bad ref!,starter,whm1,olga,olga.example.com,o@example.com,,active",       # row 15: ref
        "NUL\x00REF,starter,whm1,pia,pia.example.com,p@example.com,,active",      # row 16: ref
    ]
    code, _, err = run("service", "import", csv_file(HEADER + "\n".join(rows) + "\n"))
    assert code == 2
    assert err.splitlines()[:-1] == [
        "row 3: ref: 'WHMCS-1' is also in row 2",
        "row 4: ref: 'INV-9' is a service already",
        "row 5: username: 'taken' is already used on server whm1 (service INV-9)",
        "row 6: username: 'alice' on server whm1 is also in row 2",
        "row 7: username: 'Gina' must be lowercase",
        "row 8: domain: 'taken.example.com' is used by service INV-9",
        "row 9: domain: 'alice.example.com' is also in row 2",
        "row 10: server: 'whm1' is a cpanel server; product 'hestia-basic' is for hestia",
        "row 11: server: unknown server 'whm9'",
        "row 12: status: 'closed' must be active or suspended",
        "row 13: username: is required",
        "row 14: row: has 5 values; the header has 8 columns",
        "row 15: ref: 'bad ref!' must be 1-100 letters, digits, '.', '_', ':' or '-'",
        "row 16: ref: 'NUL\\x00REF' must be 1-100 letters, digits, '.', '_', ':' or '-'"]
    assert Service.select().count() == 1  # only the order made above


@pytest.mark.parametrize("text, message", [
    ("", "row 1: header: is missing: the first row must name the columns"),
    ("ref,product,server,username,domain,email,plan\n", "row 1: header: unknown column 'plan'"),
    ("ref,product,server,username,domain\nA,starter,whm1,alice,alice.example.com\n",
     "row 1: header: column 'email' is missing"),
    (HEADER, "row 2: file: has a header but no rows to import"),
])
def test_a_bad_header_is_refused(cpanel_setup, run, csv_file, text, message):
    code, _, err = run("service", "import", csv_file(text))
    assert code == 2 and err.startswith(message), err
    assert Service.select().count() == 0


def test_dry_run_shows_what_would_be_imported_and_writes_nothing(cpanel_setup, run, csv_file):
    code, out, err = run("service", "import", csv_file(GOOD), "--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ROW", "REF", "PRODUCT", "SERVER", "USERNAME", "DOMAIN", "STATUS", "PAID_UNTIL"]
    assert lines[1].split() == ["2", "WHMCS-1", "starter", "whm1", "alice", "alice.example.com", "active",
                                "2027-01-31"]
    assert lines[-1] == ("dry run: 3 services would be imported (2 active, 1 suspended) on whm1 (3); "
                         "nothing was written")
    code, out, _ = run("service", "import", csv_file(GOOD), "--dry-run", "--json")
    assert code == 0 and json.loads(out)["imported"] == 0 and len(json.loads(out)["rows"]) == 3
    assert Service.select().count() == 0 and AuditEntry.select().count() == 0


def test_the_api_imports_csv_for_an_admin_token_only(cpanel_setup, settings, vault):
    admin, billing = tokens.create("ops", scope="admin"), tokens.create("whmcs")
    with TestClient(api.create_app(settings, vault)) as client:
        def post(body: str, token: str, **params):
            return client.post("/v1/services/import", content=body.encode(), params=params,
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"})
        assert post(GOOD, billing).status_code == 403
        bad = post(GOOD.replace("2027-01-31", "2027-02-30"), admin)
        assert bad.status_code == 422 and bad.json()["detail"] == [
            {"loc": ["body", 2, "paid_until"], "msg": "'2027-02-30' is not a date (YYYY-MM-DD)", "type": "value_error"}]
        dry = post(GOOD, admin, dry_run="true")
        assert dry.status_code == 200 and dry.json()["imported"] == 0 and Service.select().count() == 0
        done = post(GOOD, admin)
        assert done.status_code == 200, done.text
        assert (done.json()["imported"], done.json()["by_status"]) == (3, {"active": 2, "suspended": 1})
        assert client.get("/v1/services/WHMCS-2", headers={"Authorization": f"Bearer {billing}"}
                          ).json()["status"] == "suspended"
    [entry] = AuditEntry.select().where(AuditEntry.action == "service.import")
    assert (entry.actor, entry.subject) == ("api:ops", "import:api")


def test_5000_rows_are_imported_in_one_transaction(cpanel_setup, run, csv_file, database):
    rows = [f"BIG-{n},starter,whm1,user{n},site{n}.example.com,owner{n}@example.com,2027-01-31,active"
            for n in range(5000)]
    broken = rows[:-1] + ["BIG-4999,starter,whm1,user4999,site4999.example.com,owner@example.com,2027-02-30,active"]
    started = time.monotonic()
    code, _, err = run("service", "import", csv_file(HEADER + "\n".join(broken) + "\n"))
    refused = time.monotonic() - started
    assert code == 2 and err.splitlines()[0].startswith("row 5001: paid_until:")
    assert Service.select().count() == 0  # 4,999 good rows, one bad: none written

    started = time.monotonic()
    code, out, err = run("service", "import", csv_file(HEADER + "\n".join(rows) + "\n"))
    took = time.monotonic() - started
    assert code == 0, err
    assert out.startswith("imported 5000 services (5000 active) on whm1 (5000)")
    assert Service.select().where(Service.ref.startswith("BIG-")).count() == 5000
    assert AuditEntry.select().where(AuditEntry.action == "service.import").count() == 1
    print(f"\n5000-row import on {type(database).__name__}: refused (last row bad) in {refused:.2f} s, "
          f"imported in {took:.2f} s")
