"""A service's whole life on a plain Linux host over real SSH, through real ansible-runner runs.

The host is this machine's sshd on loopback (tests/sshd.py); every account command runs with
``-R <throwaway root>`` (the ``root_dir`` credential), a root made of copies of /etc/passwd,
group, shadow, gshadow and login.defs, so no user is ever created on the machine itself. nginx
and systemctl are shims on the SSH session's PATH that record how they were called.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from provisiond import catalog, lifecycle
from provisiond.models import Job, ProvisioningLog, Server, Service
from provisiond.worker import Worker, test_server as run_server_test
from tests.sshd import Sshd

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def settle(worker: Worker, job: Job) -> Job:
    worker.tick(wait=True)
    return Job.get_by_id(job.id)


def last_log(job: Job) -> ProvisioningLog:
    return job.logs.order_by(ProvisioningLog.id.desc()).first()


def password_matches(password: str, hashed: str) -> bool:
    """Check a shadow hash without any module of the system under test."""
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
    """The throwaway root and what the shims recorded."""

    def __init__(self, root: Path, calls: Path, sshd: Sshd):
        self.root, self.calls, self.sshd = root, calls, sshd

    def entry(self, name: str, database: str = "passwd") -> list[str] | None:
        for line in (self.root / "etc" / database).read_text().splitlines():
            if line.split(":")[0] == name:
                return line.split(":")
        return None

    def record(self, name: str) -> dict:
        return json.loads((self.root / "var/lib/provisiond/accounts" / f"{name}.json").read_text())

    def vhost(self, domain: str) -> Path:
        return self.root / "etc/nginx/sites-available" / f"{domain}.conf"

    def link(self, domain: str) -> Path:
        return self.root / "etc/nginx/sites-enabled" / f"{domain}.conf"

    def shim_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


def make_host_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        shutil.copy2(Path("/etc") / name, root / "etc" / name)
    for folder in ("home", "etc/nginx/sites-available", "etc/nginx/sites-enabled"):
        (root / folder).mkdir(parents=True)
    return root


def install_shims(bin_dir: Path, calls: Path) -> None:
    bin_dir.mkdir()
    for name in ("nginx", "systemctl"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n')
        script.chmod(0o755)


@pytest.fixture
def host(tmp_path):
    root = make_host_root(tmp_path)
    calls = tmp_path / "shim-calls.log"
    install_shims(tmp_path / "bin", calls)
    with Sshd(tmp_path / "sshd", env={"PATH": f"{tmp_path / 'bin'}:{SYSTEM_PATH}"}) as sshd:
        yield Host(root, calls, sshd)


@pytest.fixture
def linux_setup(database, registry, vault, host):
    """Group 'web', server 'lin1' (the loopback sshd, accounts under the throwaway root), and
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


@pytest.fixture
def worker(settings, vault):
    w = Worker(settings, vault, owner="test-worker")
    yield w
    w.shutdown()


@pytest.fixture(autouse=True)
def machine_users_untouched():
    before = Path("/etc/passwd").read_text(), Path("/etc/shadow").read_text()
    yield
    assert (Path("/etc/passwd").read_text(), Path("/etc/shadow").read_text()) == before


def test_account_lifecycle_end_to_end(linux_setup, registry, vault, host, worker, settings):
    service, job = lifecycle.order(registry, vault, product="starter", domain="shop.example.com",
                                   email="owner@shop.example.com", ref="INV-100")
    job = settle(worker, job)
    service = Service.get_by_id(service.id)
    assert job.status == "succeeded", job.last_error
    assert service.status == "active" and service.remote_id == "shop"
    user = host.entry("shop")
    assert user is not None and user[4:6] == ["shop.example.com", "/home/shop"]
    assert host.entry("shop", "group") is not None
    home, web_root = host.root / "home/shop", host.root / "home/shop/public_html"
    assert home.is_dir() and web_root.is_dir()
    assert web_root.stat().st_uid == int(user[2]) and oct(home.stat().st_mode & 0o777) == "0o711"
    vhost = host.vhost("shop.example.com").read_text()
    assert "# provisiond account: shop" in vhost and "server_name shop.example.com www.shop.example.com;" in vhost
    assert f"root /home/shop/public_html;" in vhost
    assert host.link("shop.example.com").is_symlink()
    assert host.link("shop.example.com").resolve() == host.vhost("shop.example.com").resolve()
    first_password = vault.decrypt(service.password)
    assert password_matches(first_password, host.entry("shop", "shadow")[1])
    record = host.record("shop")
    assert (record["domain"], record["package"], record["quota_mb"]) == ("shop.example.com", "basic", 512)
    assert oct((host.root / "var/lib/provisiond/accounts/shop.json").stat().st_mode & 0o777) == "0o600"
    assert host.shim_calls() == ["nginx -t", "systemctl reload nginx"]

    steps = [
        ("suspend", {"reason": "overdue"}, "suspended",
         lambda: host.entry("shop", "shadow")[1].startswith("!") and host.entry("shop", "shadow")[7] == "1"
         and not host.link("shop.example.com").exists() and host.vhost("shop.example.com").exists()),
        ("suspend", {"reason": "overdue"}, "suspended",       # idempotent repeat: nothing to do
         lambda: host.shim_calls()[-1] == "systemctl reload nginx" and len(host.shim_calls()) == 3),
        ("change_password", {}, "suspended",                  # a new password keeps the lock
         lambda: host.entry("shop", "shadow")[1].startswith("!")),
        ("unsuspend", {}, "active",
         lambda: not host.entry("shop", "shadow")[1].startswith("!") and host.entry("shop", "shadow")[7] == ""
         and host.link("shop.example.com").is_symlink()),
        ("unsuspend", {}, "active", lambda: len(host.shim_calls()) == 5),
        ("change_package", {"package": "pro"}, "active", lambda: host.record("shop")["package"] == "pro"),
        ("change_password", {}, "active", lambda: True),
    ]
    for action, kwargs, status, on_host in steps:
        if action == "unsuspend" and Service.get_by_id(service.id).status == "active":
            Service.update(status="suspended").where(Service.id == service.id).execute()
        if action == "suspend" and Service.get_by_id(service.id).status == "suspended":
            Service.update(status="active").where(Service.id == service.id).execute()
        job = settle(worker, lifecycle.request(registry, vault, "INV-100", action, **kwargs))
        assert job.status == "succeeded", (action, job.last_error)
        assert Service.get_by_id(service.id).status == status
        assert on_host(), action
    service = Service.get_by_id(service.id)
    assert service.package == "pro"
    new_password = vault.decrypt(service.password)
    assert new_password != first_password
    assert password_matches(new_password, host.entry("shop", "shadow")[1])
    change_package_log = ProvisioningLog.select().where(ProvisioningLog.action == "change_package").get()
    kept = json.loads(next(Path(change_package_log.artifacts_path).glob("job_*.json")).read_text())
    assert kept["outcome"]["stats"]["quota"].startswith("skipped: ")  # no user quotas on a tmp root

    job = settle(worker, lifecycle.request(registry, vault, "INV-100", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"
    assert host.entry("shop") is None and host.entry("shop", "shadow") is None
    assert host.entry("shop", "group") is None
    assert not home.exists() and not host.vhost("shop.example.com").exists()
    assert not host.link("shop.example.com").exists()
    assert not (host.root / "var/lib/provisiond/accounts/shop.json").exists()

    # Every attempt left a log row and kept artifacts that never contain a secret.
    logs = list(ProvisioningLog.select())
    assert len(logs) == 9 and all(row.status == "succeeded" for row in logs)
    secrets = [first_password, new_password, host.sshd.client_key.splitlines()[1]]
    for row in logs:
        kept = Path(row.artifacts_path)
        assert (kept / "stdout.txt").exists()
        for path in kept.iterdir():
            text = path.read_text()
            assert not any(s in text for s in secrets), path
        assert not any(s in json.dumps([row.message, row.panel_answer, row.stdout_excerpt]) for s in secrets)
