"""A service's whole life on a plain Linux host over real SSH, through real ansible-runner runs,
and the pinned host key that guards every SSH panel.

The host is an OpenSSH sshd on loopback (tests/sshd.py). Every account command runs with
``-R <throwaway root>`` (the ``root_dir`` credential): a root made of copies of /etc/passwd,
group, shadow, gshadow and login.defs, so no user is ever created on this machine. nginx and
systemctl are shims on the SSH session's PATH that record how they were called.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from provisiond import actions, catalog, cli, lifecycle, queue
from provisiond.models import Job, ProvisioningLog, Server, Service, utcnow
from provisiond.worker import test_server as run_server_test
from tests.sshd import Sshd
from tests.helpers import kept_texts, last_log, settle

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def reported(row: ProvisioningLog) -> dict:
    """What the playbook reported with set_stats, from the kept artifacts."""
    kept = json.loads(next(Path(row.artifacts_path).glob("job_*.json")).read_text())
    return kept["outcome"]["stats"]


def assert_no_secret(row: ProvisioningLog, *secrets: str) -> None:
    texts = kept_texts(row)
    for text in texts:
        for secret in secrets:
            assert secret not in text, row.action


def password_matches(password: str, hashed: str) -> bool:
    """Check a shadow hash the way login would."""
    salt = hashed.rsplit("$", 1)[0]
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        return crypt.crypt(password, salt) == hashed
    except ImportError:  # Python 3.13 has no crypt module
        method, salt_text = salt.split("$")[1:3]
        out = subprocess.run(["openssl", "passwd", f"-{method}", "-salt", salt_text, "-stdin"],
                             input=password, capture_output=True, text=True, check=True)
        return out.stdout.strip() == hashed


class Host:
    """The throwaway root, the sshd in front of it, and what the nginx/systemctl shims saw."""

    def __init__(self, root: Path, calls: Path, sshd: Sshd):
        self.root, self.calls, self.sshd = root, calls, sshd

    def entry(self, name: str, database: str = "passwd") -> list[str] | None:
        for line in (self.root / "etc" / database).read_text().splitlines():
            if line.split(":")[0] == name:
                return line.split(":")
        return None

    def record_path(self, name: str) -> Path:
        return self.root / "var/lib/provisiond/accounts" / f"{name}.json"

    def vhost(self, domain: str) -> Path:
        return self.root / "etc/nginx/sites-available" / f"{domain}.conf"

    def link(self, domain: str) -> Path:
        return self.root / "etc/nginx/sites-enabled" / f"{domain}.conf"

    def shim_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def useradd(self, name: str) -> None:
        subprocess.run(["useradd", "-R", str(self.root), "-M", "-U", name], check=True, capture_output=True)


def install_shims(bin_dir: Path, calls: Path, names=("nginx", "systemctl")) -> None:
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n')
        script.chmod(0o755)


@pytest.fixture
def host(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        shutil.copy2(Path("/etc") / name, root / "etc" / name)
    for folder in ("home", "etc/nginx/sites-available", "etc/nginx/sites-enabled"):
        (root / folder).mkdir(parents=True)
    calls = tmp_path / "shim-calls.log"
    install_shims(tmp_path / "bin", calls)
    with Sshd(tmp_path / "sshd", env={"PATH": f"{tmp_path / 'bin'}:{SYSTEM_PATH}"}) as sshd:
        yield Host(root, calls, sshd)


@pytest.fixture
def linux_setup(database, registry, vault, host):
    """Group 'web', server 'lin1' (the loopback sshd; accounts under the throwaway root), and
    product 'starter' (package basic, 512 MB quota)."""
    catalog.add_group("web")
    server = catalog.add_server(registry, vault, name="lin1", panel="linux", host="127.0.0.1",
                                port=host.sshd.port, group_name="web",
                                credentials={"private_key": host.sshd.client_key,
                                             "python_interpreter": "/usr/bin/python3",
                                             "root_dir": str(host.root)})
    product = catalog.add_product(registry, name="starter", panel="linux", group_name="web",
                                  package="basic", config={"quota_mb": 512})
    return server, product


@pytest.fixture(autouse=True)
def machine_accounts_untouched():
    before = [Path("/etc", name).read_text() for name in ("passwd", "shadow", "group")]
    yield
    assert [Path("/etc", name).read_text() for name in ("passwd", "shadow", "group")] == before


def test_account_lifecycle_end_to_end(linux_setup, registry, vault, host, worker, settings):
    service, job = lifecycle.order(registry, vault, product="starter", domain="shop.example.com",
                                   email="owner@shop.example.com", ref="INV-100")
    job = settle(worker, job)
    service = Service.get_by_id(service.id)
    assert job.status == "succeeded", job.last_error
    assert service.status == "active" and service.remote_id == "shop"
    user = host.entry("shop")
    assert user is not None and user[4:7] == ["shop.example.com", "/home/shop", "/bin/bash"]
    assert host.entry("shop", "group") is not None
    home, web_root = host.root / "home/shop", host.root / "home/shop/public_html"
    assert oct(home.stat().st_mode & 0o777) == "0o711" and home.stat().st_uid == int(user[2])
    assert web_root.is_dir() and (web_root.stat().st_uid, web_root.stat().st_gid) == (int(user[2]), int(user[3]))
    vhost = host.vhost("shop.example.com").read_text()
    assert vhost.startswith("# provisiond account: shop\n")
    assert "server_name shop.example.com www.shop.example.com;" in vhost and "root /home/shop/public_html;" in vhost
    assert host.link("shop.example.com").is_symlink()
    assert host.link("shop.example.com").resolve() == host.vhost("shop.example.com").resolve()
    first_password = vault.decrypt(service.password)
    assert password_matches(first_password, host.entry("shop", "shadow")[1])
    record = json.loads(host.record_path("shop").read_text())
    assert (record["domain"], record["package"], record["quota_mb"]) == ("shop.example.com", "basic", 512)
    assert oct(host.record_path("shop").stat().st_mode & 0o777) == "0o600"
    assert reported(last_log(job))["quota"].startswith("skipped: ")  # no user quotas on a tmp root
    assert host.shim_calls() == ["nginx -t", "systemctl reload nginx"]

    # A create whose answer was lost runs again: the account is this service's, nothing changes.
    again, _ = queue.enqueue("create", service=service, server=service.server, idempotency_key="create-again")
    assert settle(worker, again).status == "succeeded"
    assert host.vhost("shop.example.com").read_text() == vhost and len(host.shim_calls()) == 2
    assert password_matches(first_password, host.entry("shop", "shadow")[1])

    shadow = lambda: host.entry("shop", "shadow")  # noqa: E731
    steps = [
        ("suspend", {"reason": "overdue"}, "suspended",
         lambda: shadow()[1].startswith("!") and shadow()[7] == "1"
         and not host.link("shop.example.com").exists() and host.vhost("shop.example.com").exists()
         and host.shim_calls()[-1] == "systemctl reload nginx"),
        ("suspend", {"reason": "overdue"}, "suspended", lambda: len(host.shim_calls()) == 3),  # nothing to do
        ("change_password", {}, "suspended", lambda: shadow()[1].startswith("!")),           # still locked
        ("unsuspend", {}, "active",
         lambda: not shadow()[1].startswith("!") and shadow()[7] == "" and host.link("shop.example.com").is_symlink()
         and host.shim_calls()[-2:] == ["nginx -t", "systemctl reload nginx"]),
        ("unsuspend", {}, "active", lambda: len(host.shim_calls()) == 5),                     # nothing to do
        ("change_package", {"package": "pro"}, "active",
         lambda: json.loads(host.record_path("shop").read_text())["package"] == "pro"),
        ("change_password", {}, "active", lambda: not shadow()[1].startswith("!")),
    ]
    for action, kwargs, status, on_host in steps:
        current = Service.get_by_id(service.id).status
        if action in ("suspend", "unsuspend") and current == status:   # ask again for the same state
            Service.update(status="active" if action == "suspend" else "suspended").where(
                Service.id == service.id).execute()
        job = settle(worker, lifecycle.request(registry, vault, "INV-100", action, **kwargs))
        assert job.status == "succeeded", (action, job.last_error)
        assert Service.get_by_id(service.id).status == status
        assert on_host(), action
    assert reported(last_log(Job.get(Job.action == "change_package")))["package"] == "pro"
    service = Service.get_by_id(service.id)
    new_password = vault.decrypt(service.password)
    assert service.package == "pro" and new_password != first_password
    assert password_matches(new_password, shadow()[1])

    job = settle(worker, lifecycle.request(registry, vault, "INV-100", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"
    assert host.entry("shop") is None and host.entry("shop", "shadow") is None
    assert host.entry("shop", "group") is None and not home.exists()
    assert not host.vhost("shop.example.com").exists() and not host.link("shop.example.com").exists()
    assert not host.record_path("shop").exists()

    # Every attempt left a log row and kept artifacts that never contain a secret.
    logs = list(ProvisioningLog.select())
    assert len(logs) == 10 and all(row.status == "succeeded" for row in logs)
    passwords = [first_password, new_password] + [vault.decrypt_json(j.secret_params, "test")["password"] for j in
                                                  Job.select().where(Job.action == "change_password")]
    for row in logs:
        assert (Path(row.artifacts_path) / "stdout.txt").exists()
        assert_no_secret(row, *passwords, host.sshd.client_key.splitlines()[1])


@pytest.mark.parametrize("case", ["user_not_ours", "vhost_not_ours"])
def test_accounts_that_are_not_the_services_are_refused_and_kept(case, linux_setup, registry, vault,
                                                                 host, worker):
    if case == "user_not_ours":
        host.useradd("taken")  # a user provisiond did not make
        expected_task, expected = "Refuse a user that is not this service's", \
            "the user taken exists on the host and was not created by provisiond"
    else:
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
    assert_no_secret(log, vault.decrypt(service.password), host.sshd.client_key.splitlines()[1])
    if case == "user_not_ours":
        assert host.entry("taken")[5] == "/home/taken" and not host.record_path("taken").exists()
        # Terminating the failed service must not remove a user it never had.
        job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
        assert job.status == "needs_attention"
        assert "not removed: the user taken on the host was not created by provisiond" in job.last_error
        assert host.entry("taken") is not None
    else:
        assert host.entry("taken") is None  # refused before useradd
        assert host.vhost("taken.example.com").read_text().startswith("# provisiond account: someone")
    assert host.shim_calls() == []


# -- the pinned host key -----------------------------------------------------------------------

def test_server_add_pins_the_host_key_and_server_test_uses_it(linux_setup, host, settings, capsys):
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


def test_a_changed_host_key_stops_the_run_without_a_retry_storm(linux_setup, registry, vault, host,
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


def test_terminate_keeps_a_final_backup_when_the_product_asks(linux_setup, registry, vault, host,
                                                             worker, settings, tmp_path, request):
    import tarfile
    # tar on the host goes through a shim that says under which umask, into which directory.
    (tmp_path / "bin" / "tar").write_text(
        f'#!/bin/sh\ndir=$(dirname "$2")\necho "tar umask=$(umask) dir=$(stat -c %a "$dir") $dir" >> {host.calls}\n'
        f'exec {shutil.which("tar")} "$@"\n')
    (tmp_path / "bin" / "tar").chmod(0o755)
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


def test_a_panel_without_final_backup_refuses_the_product_policy(linux_setup, registry):
    from provisiond.errors import ValidationError
    with pytest.raises(ValidationError) as refused:
        catalog.add_product(registry, name="nobackup", panel="cpanel", group_name="web", package="basic",
                            backup_before_terminate=True)
    assert refused.value.field == "backup_before_terminate"


def test_list_accounts_reads_every_ordinary_user_with_its_lock_in_one_run(linux_setup, registry, vault, host,
                                                                          worker, settings):
    """Users made by provisiond (one suspended), one made by hand (no record: no domain nor
    package) and none of the system users; suspended is the shadow lock."""
    server, _ = linux_setup
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
