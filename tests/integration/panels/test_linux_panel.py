"""What only a plain Linux host shows over real SSH, through real ansible-runner runs, and the
pinned host key that guards every SSH panel.

The host is an OpenSSH sshd on loopback; every account command works in a throwaway root
(LinuxAdapter in ssh_adapters.py). The lifecycle, a refused key, an unreachable host and a user
provisiond did not make are the conformance suite's (test_conformance.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from provisiond import actions, catalog, cli, lifecycle
from provisiond.models import Job, ProvisioningLog, Server, Service, utcnow
from provisiond.worker import test_server as run_server_test
from tests.helpers import last_log, settle
from tests.integration.panels.ssh_adapters import reported

pytestmark = pytest.mark.parametrize("adapter", ["linux"], indirect=True)


@pytest.fixture
def host(adapter):
    return adapter


def test_a_domain_whose_vhost_is_not_the_services_is_refused_and_kept(adapter, registry, vault, host, worker):
    host.vhost("taken.example.com").write_text("# provisiond account: someone\nserver {}\n")
    expected_task, expected = "Refuse a domain whose vhost is not this service's", "belongs to someone"
    service, job = lifecycle.order(registry, vault, product="starter", domain="taken.example.com",
                                   email="me@taken.example.com")
    assert service.username == "taken"
    job = settle(worker, job)
    assert job.status == "failed" and job.attempts == 1
    assert Service.get_by_id(service.id).status == "failed"
    log = last_log(job)
    assert log.failed_task == expected_task and expected in log.message
    adapter.assert_kept_clean(log, vault.decrypt(service.password))
    assert host.entry("taken") is None  # refused before useradd
    assert host.vhost("taken.example.com").read_text().startswith("# provisiond account: someone")
    assert host.shim_calls() == []


# -- the pinned host key -----------------------------------------------------------------------

def test_server_add_pins_the_host_key_and_server_test_uses_it(adapter, host, settings, capsys):
    server = Server.get(Server.name == "lin1")
    assert server.host_key == host.sshd.host_key  # pinned by `server add` (paramiko)
    # A server added while unreachable is pinned by its first `server test`.
    Server.update(host_key=None).where(Server.id == server.id).execute()
    code = cli.main(["--home", str(settings.home), "--database-url", settings.database_url,
                     "--json", "server", "test", "lin1"])
    outcome = json.loads(capsys.readouterr().out)
    assert code == 0, outcome
    assert outcome["health"] == "ok" and outcome["reported"]["version"].startswith("Linux ")
    server = Server.get_by_id(server.id)
    assert server.host_key == host.sshd.host_key and server.health == "ok"


def test_a_changed_host_key_stops_the_run_without_a_retry_storm(adapter, registry, vault, host,
                                                                worker, settings, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "impostor")], check=True)
    impostor = " ".join((tmp_path / "impostor.pub").read_text().split()[:2])
    Server.update(host_key=impostor).where(Server.name == "lin1").execute()

    service, job = lifecycle.order(registry, vault, product="starter", domain="keyed.example.com",
                                   email="me@keyed.example.com")
    started = worker.tick(wait=True)
    assert len(started) == 1
    job = Job.get_by_id(job.id)
    log = last_log(job)
    assert job.status != "succeeded" and job.attempts == 1
    assert "host key" in log.message.lower() or "REMOTE HOST IDENTIFICATION HAS CHANGED" in log.message
    assert log.failed_task == "Read the account's state on the host"
    assert host.entry("keyed") is None
    if job.status == "queued":  # the core counts an unreachable host as transient: one later retry,
        assert job.run_after > utcnow()  # with backoff, not a loop
        assert worker.tick(now=utcnow(), wait=True) == []
    assert ProvisioningLog.select().count() == 1

    report = run_server_test(settings, vault, registry, Server.get(Server.name == "lin1"))
    assert report["health"] == "failed" and "host key" in report["message"].lower()
    assert Server.get(Server.name == "lin1").host_key == impostor  # never re-pinned behind the admin's back


def test_terminate_keeps_a_final_backup_when_the_product_asks(adapter, registry, vault, host,
                                                             worker, settings, tmp_path, request):
    import tarfile
    # tar on the host goes through a shim that says under which umask, into which directory.
    (host.bin / "tar").write_text(
        f'#!/bin/sh\ndir=$(dirname "$2")\necho "tar umask=$(umask) dir=$(stat -c %a "$dir") $dir" >> {host.calls}\n'
        f'exec {shutil.which("tar")} "$@"\n')
    (host.bin / "tar").chmod(0o755)
    catalog.add_product(registry, name="kept", panel="linux", group_name="web", package="basic",
                        backup_before_terminate=True)
    service, job = lifecycle.order(registry, vault, product="kept", domain="kept.example.com",
                                   email="me@kept.example.com")
    assert settle(worker, job).status == "succeeded"
    (host.root / "home/kept/public_html/index.html").write_text("the client's site\n")
    (host.root / "home/kept/public_html/shadow").symlink_to(host.root / "etc/shadow")  # a customer's link
    job = lifecycle.request(registry, vault, service.ref, "terminate")
    # A customer plants a link where a guessable archive path would be: it must not be written through.
    victim, planted = tmp_path / "victim", Path(f"/tmp/provisiond-backup-kept-{job.id}.tar.gz")
    victim.write_text("not the archive\n")
    planted.unlink(missing_ok=True)
    planted.symlink_to(victim)
    request.addfinalizer(lambda: planted.unlink(missing_ok=True))
    job = settle(worker, job)
    assert job.status == "succeeded", job.last_error
    assert victim.read_bytes() == b"not the archive\n"  # the old role wrote the archive there
    assert host.entry("kept") is None and not (host.root / "home/kept").exists()
    [tar_call] = [line for line in host.shim_calls() if line.startswith("tar ")]
    umask, mode, folder = tar_call.split()[1:]
    assert (umask, mode) == ("umask=0077", "dir=700") and not Path(folder).exists()  # removed after
    [archive] = list(Path(settings.backup_dir).glob("linux-127.0.0.1-kept-*.tar.gz"))
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    assert oct(Path(settings.backup_dir).stat().st_mode & 0o777) == "0o700"
    assert reported(last_log(job))["backup"] == str(archive)
    with tarfile.open(archive) as tar:
        index = next(m for m in tar.getmembers() if m.name.endswith("public_html/index.html"))
        assert tar.extractfile(index).read() == b"the client's site\n"
        link = next(m for m in tar.getmembers() if m.name.endswith("public_html/shadow"))
        assert link.issym()  # kept as a link: the file it points at is not in the archive


def test_a_panel_without_final_backup_refuses_the_product_policy(adapter, registry):
    from provisiond.errors import ValidationError
    with pytest.raises(ValidationError) as refused:
        catalog.add_product(registry, name="nobackup", panel="cpanel", group_name="web", package="basic",
                            backup_before_terminate=True)
    assert refused.value.field == "backup_before_terminate"


def test_list_accounts_reads_every_ordinary_user_with_its_lock_in_one_run(adapter, registry, vault, host,
                                                                          worker, settings):
    """Users made by provisiond (one suspended), one made by hand (no record: no domain nor
    package) and none of the system users; suspended is the shadow lock."""
    server = catalog.server(adapter.server_name)
    # The copied databases may hold this machine's own ordinary users: keep only its system users.
    for database in ("passwd", "shadow"):
        path = host.root / "etc" / database
        uids = {row.split(":")[0]: row.split(":")[2] for row in (host.root / "etc/passwd").read_text().splitlines()}
        path.write_text("".join(f"{row}\n" for row in path.read_text().splitlines()
                                if int(uids.get(row.split(":")[0], "0")) < 1000 or row.startswith("nobody:")))
    for domain, ref in (("shop.example.com", "INV-1"), ("late.example.com", "INV-2")):
        _, job = lifecycle.order(registry, vault, product="starter", domain=domain,
                                 email=f"owner@{domain}", ref=ref)
        assert settle(worker, job).status == "succeeded", job.last_error
    assert settle(worker, lifecycle.request(registry, vault, "INV-2", "suspend", reason="overdue")).status == "succeeded"
    host.useradd("handmade")
    subprocess.run(["chpasswd", "-R", str(host.root), "-c", "SHA512"], input="handmade:Hand-made-pass-1", text=True,
                   check=True, capture_output=True)

    answer = actions.run(settings, vault, registry, action="list_accounts", server=server)
    assert sorted(answer["accounts"], key=lambda a: a["username"]) == [
        {"username": "handmade", "domain": None, "package": None, "suspended": False, "email": None},
        {"username": "late", "domain": "late.example.com", "package": "basic", "suspended": True, "email": None},
        {"username": "shop", "domain": "shop.example.com", "package": "basic", "suspended": False, "email": None},
    ]
    text = json.dumps(answer)
    assert "$6$" not in text and "Hand-made-pass-1" not in text
    assert not any(vault.decrypt(s.password) in text for s in Service.select())
