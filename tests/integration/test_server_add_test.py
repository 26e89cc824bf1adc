"""`server add --test` and `POST /v1/servers?test=1` (provisiond.servertest), on SQLite and
PostgreSQL: the panel's test_connection runs on the settings before anything is stored."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from provisiond import api, catalog, tokens
from provisiond.models import AuditEntry, Server
from tests.conftest import WHM_TOKEN
from tests.helpers import assert_kept_nowhere
from tests.integration.panels.ssh_adapters import LinuxAdapter

WRONG_TOKEN = "canary-wrong-whm-token-4Hq8"


def whm_add(whm, token: str, name: str = "whm2") -> list[str]:
    return ["server", "add", name, "--panel", "cpanel", "--host", whm.host, "--port", str(whm.port),
            "--group", "web", "--credential", f"api_token={token}", "--credential", "scheme=http", "--test"]


def test_cli_saves_nothing_when_the_test_fails_and_the_server_when_it_passes(database, whm, run, settings, vault,
                                                                           caplog):
    catalog.add_group("web")
    code, out, err = run(*whm_add(whm, WRONG_TOKEN))
    assert code == 2, (out, err)
    assert "test: test_connection of server whm2 failed at task 'Ask WHM for its version (version)'" in err
    assert "Access denied" in err and "nothing was saved" in err  # the panel's answer
    assert Server.select().count() == 0 and AuditEntry.select().count() == 0
    assert_kept_nowhere(WRONG_TOKEN, settings, out + err + caplog.text)

    code, out, err = run(*whm_add(whm, WHM_TOKEN))
    assert code == 0, err
    assert "server whm2 added (cpanel at 127.0.0.1): test_connection passed; version 11." in out
    saved = catalog.server("whm2")
    assert saved.health == "ok" and saved.health_checked_at is not None
    assert catalog.open_credentials(saved.credentials, vault, "whm2")["api_token"] == WHM_TOKEN


def test_api_answers_422_naming_test_with_the_panel_answer_and_201_when_it_passes(database, whm, settings, vault):
    catalog.add_group("web")
    token = tokens.create("ops", scope="admin")
    body = {"name": "whm2", "panel": "cpanel", "host": whm.host, "port": whm.port, "group": "web",
            "credentials": {"api_token": WRONG_TOKEN, "scheme": "http"}}
    with TestClient(api.create_app(settings, vault), headers={"Authorization": f"Bearer {token}"}) as client:
        refused = client.post("/v1/servers?test=1", json=body)
        assert refused.status_code == 422, refused.text
        problem, = refused.json()["detail"]
        assert problem["loc"] == ["query", "test"] and "Access denied" in problem["msg"]
        assert WRONG_TOKEN not in refused.text
        assert Server.select().count() == 0
        saved = client.post("/v1/servers?test=1", json=body | {"credentials": {"api_token": WHM_TOKEN,
                                                                                 "scheme": "http"}})
        assert saved.status_code == 201, saved.text
        answer = saved.json()
        assert answer["name"] == "whm2" and answer["health"] == "ok" and answer["test"]["health"] == "ok"
        assert answer["test"]["reported"]["version"].startswith("11.") and WHM_TOKEN not in saved.text
    assert catalog.server("whm2").health == "ok"


def test_an_ssh_panel_pins_the_host_key_its_test_used(database, tmp_path, run):
    catalog.add_group("web")
    host = LinuxAdapter(tmp_path)
    with host.start():
        key = tmp_path / "client_key"
        key.write_text(host.sshd.client_key)
        code, out, err = run("server", "add", "lin1", "--panel", "linux", "--host", "127.0.0.1",
                             "--port", str(host.sshd.port), "--group", "web", "--credential", f"private_key=@{key}",
                             "--credential", "python_interpreter=/usr/bin/python3",
                             "--credential", f"root_dir={host.root}", "--test", "--json")
    assert code == 0, err
    assert json.loads(out)["test"]["health"] == "ok"
    assert catalog.server("lin1").host_key == host.sshd.host_key
