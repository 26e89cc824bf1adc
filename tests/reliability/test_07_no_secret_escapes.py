"""Guarantee 7: no secret escapes.

The main flows run with canary secrets — a WHM API token, a billing webhook secret, the SSH
private key of a Linux host, and the passwords provisiond generates — every run at
``ansible_verbosity=4`` and one of them failing: create, suspend, change_password, terminate, a
create the panel refuses, and an SSH server test. Then every column of every table, the log
records, stdout/stderr, the kept artifacts, the CLI's answers, and the argv (and run-marked
environments) of every process sampled while the runs were in flight are searched for each
secret and its URL- and JSON-encoded forms: zero hits. Each run's private data dir is gone
once it ends. The HTTP API's answers about the same services and jobs are searched too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from provisiond import catalog, lifecycle
from provisiond.execute import RUN_MARKER
from provisiond.models import MODELS, Job, Service
from provisiond.sandbox.cpanel import WhmSimulator
from provisiond import worker as worker_module
from provisiond.worker import Worker
from tests.reliability.conftest import ROOT, daemon_env
from tests.sshd import Sshd

TOKEN = f"canary-api-token-{uuid.uuid4().hex}"
BILLING_SECRET = f"canary-billing-secret-{uuid.uuid4().hex}"


def forms(secret: str) -> set[str]:
    return {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
            json.dumps(secret)[1:-1]}


def hits(text: str, secrets: dict[str, str]) -> list[str]:
    return sorted({name for name, value in secrets.items() for form in forms(value) if form in text})


class ProcessSampler:
    """Keeps every process's argv, and the environment of this test's run processes."""

    def __init__(self):
        self.argv: set[bytes] = set()
        self.environ: set[bytes] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        marker = f"{RUN_MARKER}=".encode()
        while not self.stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    self.argv.add(Path(f"/proc/{entry.name}/cmdline").read_bytes())
                    environ = Path(f"/proc/{entry.name}/environ").read_bytes()
                except OSError:
                    continue
                if marker in environ:
                    self.environ.add(environ)
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


@pytest.fixture
def whm():
    with WhmSimulator(token=TOKEN) as simulator:
        yield simulator


@pytest.fixture
def linux_host(tmp_path):
    root = tmp_path / "root"
    for folder in ("etc/nginx/sites-available", "etc/nginx/sites-enabled"):
        (root / folder).mkdir(parents=True)
    (root / "etc/passwd").write_text("")
    with Sshd(tmp_path / "sshd") as sshd:
        yield sshd, root


def dump_database(database) -> str:
    lines = []
    for model in MODELS:
        cursor = database.execute_sql(f'SELECT * FROM "{model._meta.table_name}"')
        lines += [repr(row) for row in cursor.fetchall()]
    assert len(lines) > 20  # the flows really wrote rows
    return "\n".join(lines)


def test_canary_secrets_appear_nowhere(database, settings, registry, vault, whm, linux_host, tmp_path,
                                       monkeypatch, caplog, capsys, request):
    # $TMPDIR of the runs: only SSH's control sockets go there (no secret), for a run's time.
    tmp = Path(tempfile.mkdtemp(prefix="prv-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    caplog.set_level(logging.DEBUG)
    settings = dataclasses.replace(settings, ansible_verbosity=4, billing_webhook_url="http://127.0.0.1:9/hook",
                                   billing_webhook_secret=BILLING_SECRET)
    sshd, root = linux_host
    catalog.add_group("web")
    catalog.add_server(registry, vault, name="whm-canary", panel="cpanel", host=whm.host, port=whm.port,
                       group_name="web", credentials={"api_token": TOKEN, "scheme": "http"})
    catalog.add_product(registry, name="starter", panel="cpanel", group_name="web", package="basic")
    catalog.add_group("ssh")
    linux = catalog.add_server(registry, vault, name="lin-canary", panel="linux", host="127.0.0.1",
                               port=sshd.port, group_name="ssh",
                               credentials={"private_key": sshd.client_key, "root_dir": str(root),
                                            "python_interpreter": "/usr/bin/python3"})
    whm.op_createacct({"username": "squatter", "domain": "taken.example.com", "plan": "basic",
                       "password": "Not-a-canary-1", "contactemail": "s@taken.example.com"})
    secrets = {"api token": TOKEN, "billing secret": BILLING_SECRET}
    secrets.update({f"ssh key line {i}": line for i, line in enumerate(sshd.client_key.splitlines())
                    if len(line) >= 16 and "PRIVATE KEY" not in line})

    worker = Worker(settings, vault, owner="canary-worker")

    def settle(job) -> Job:
        worker.tick(wait=True)
        assert list(settings.runs_dir.iterdir()) == list(tmp.iterdir()) == []  # the private data dir is gone
        return Job.get_by_id(job.id)

    try:
        with ProcessSampler() as sampler:
            service, job = lifecycle.order(registry, vault, product="starter", domain="shop.example.com",
                                           email="me@shop.example.com", ref="INV-CANARY")
            assert settle(job).status == "succeeded"
            secrets["first password"] = vault.decrypt(Service.get_by_id(service.id).password)
            assert settle(lifecycle.request(registry, vault, service.ref, "suspend")).status == "succeeded"
            job = lifecycle.request(registry, vault, service.ref, "change_password")
            secrets["new password"] = vault.decrypt_json(job.secret_params)["password"]
            assert settle(job).status == "succeeded"
            assert settle(lifecycle.request(registry, vault, service.ref, "terminate")).status == "succeeded"
            refused, job = lifecycle.order(registry, vault, product="starter", domain="taken.example.com",
                                           email="me@taken.example.com", ref="INV-REFUSED")
            secrets["refused order's password"] = vault.decrypt(Service.get_by_id(refused.id).password)
            failed = settle(job)
            assert failed.status == "failed" and "already configured" in failed.last_error
            assert worker_module.test_server(settings, vault, registry, linux)["health"] == "ok"
            assert list(settings.runs_dir.iterdir()) == list(tmp.iterdir()) == []
    finally:
        worker.shutdown()

    # The canaries were really used: the panel saw the token and both passwords.
    assert any(TOKEN in r.headers.get("authorization", "") for r in whm.requests)
    assert any(r.path.endswith("/passwd") for r in whm.requests)
    assert any(urllib.parse.quote_plus(secrets["new password"]).encode() in r.body for r in whm.requests)

    places = {"database": dump_database(database), "log records": caplog.text,
              "log arguments": "\n".join(repr(r.args) + repr(r.exc_info) for r in caplog.records)}
    out, err = capsys.readouterr()
    places["stdout"], places["stderr"] = out, err
    kept = [p for p in Path(settings.artifacts_dir).rglob("*") if p.is_file()]
    assert kept, "no artifacts were kept"
    places.update({f"artifact {p.relative_to(settings.artifacts_dir)}": p.read_text(errors="replace")
                   for p in kept})
    cached = list((settings.runs_dir.parent / "cache").iterdir())   # Ansible's routing metadata, as JSON
    assert [p.name[:17] for p in cached] == ["ansible-metadata-"]
    places.update({f"cache {p.name}": p.read_text(errors="replace") for p in cached})
    places["argv of processes"] = "\n".join(a.replace(b"\0", b" ").decode(errors="replace") for a in sampler.argv)
    places["environment of run processes"] = "\n".join(
        e.replace(b"\0", b"\n").decode(errors="replace") for e in sampler.environ)
    assert sampler.environ, "no run process was sampled"
    places.update(cli_answers(settings, failed.id))
    places.update(api_answers(settings, vault, secrets, failed.id))
    leaks = {place: found for place, text in places.items() if (found := hits(text, secrets))}
    assert leaks == {}


def api_answers(settings, vault, secrets: dict, job_id: int) -> dict[str, str]:
    """What the HTTP API answers about the same services and jobs (its bearer token is a secret too)."""
    from fastapi.testclient import TestClient

    from provisiond import api, tokens
    bearer = tokens.create("canary-check")
    secrets["api bearer token"] = bearer
    paths = ["/v1/services/INV-CANARY", "/v1/services/INV-REFUSED", f"/v1/jobs/{job_id}", "/v1/jobs",
             "/v1/queue/stats"]
    answers = {}
    with TestClient(api.create_app(settings, vault)) as client:
        for path in paths:
            response = client.get(path, headers={"Authorization": f"Bearer {bearer}"})
            assert response.status_code == 200, (path, response.text)
            answers[f"GET {path}"] = f"{response.headers}\n{response.text}"
    return answers


def cli_answers(settings, job_id: int) -> dict[str, str]:
    commands = [["log", "show", str(job_id)], ["job", "show", str(job_id), "--json"],
                ["server", "list", "--json"], ["service", "show", "INV-CANARY", "--json"],
                ["job", "list", "--json"]]
    env = daemon_env(settings)
    procs = [subprocess.Popen([sys.executable, "-m", "provisiond.cli", *c], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in commands]
    answers = {}
    for command, proc in zip(commands, procs):
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        answers[f"provisiond {' '.join(command)}"] = out
    return answers
