"""A CloudPanel site's whole life through `clpctl` over real SSH, with real ansible-runner runs.

The server is an OpenSSH sshd on loopback (tests/sshd.py) whose sessions find the clpctl
simulator first on PATH (provisiond.sandbox.clpctl: `clpctl`, and the `usermod` and `chpasswd`
shims that act on its site users), with the site users' homes and nginx's sites-enabled in
temporary folders. nginx and systemctl are shims that record how they were called.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from provisiond import actions, catalog, lifecycle, queue
from provisiond.models import Job, ProvisioningLog, Server, Service
from provisiond.sandbox import clpctl
from provisiond.worker import test_server as run_server_test
from tests.sshd import Sshd
from tests.helpers import kept_texts, last_log, settle

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAINTENANCE = "# provisiond: suspended"


def assert_no_secret(row: ProvisioningLog, *secrets: str) -> None:
    texts = kept_texts(row)
    for text in texts:
        for secret in secrets:
            assert secret not in text, row.action


class CloudPanelServer:
    """The simulator's state and folders, the sshd in front of them, and the shims' calls."""

    def __init__(self, base: Path, sshd: Sshd):
        self.state_file, self.home, self.nginx = base / "clpctl.json", base / "home", base / "nginx"
        self.calls, self.bin, self.sshd = base / "shim-calls.log", base / "bin", sshd

    @property
    def sites(self) -> dict:
        return clpctl.load_state(self.state_file)["sites"]

    def vhost(self, domain: str) -> Path:
        return self.nginx / "sites-enabled" / f"{domain}.conf"

    def saved(self, domain: str) -> Path:
        return self.nginx / "provisiond-suspended" / f"{domain}.conf"

    def suspension(self, domain: str) -> Path:
        return self.nginx / "sites-enabled" / f"+provisiond-suspended-{domain}.conf"

    def serving(self, host: str) -> Path | None:
        """The file whose server block nginx would answer ``host`` with."""
        return clpctl.nginx_serves(self.nginx, host)

    def shim_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def clpctl(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "clpctl"), *argv], env={"PATH": SYSTEM_PATH},
                              capture_output=True, text=True, check=True)

    def add_php_site(self, domain: str, user: str, password: str = "Other-password-123") -> None:
        self.clpctl("site:add:php", f"--domainName={domain}", "--phpVersion=8.3", "--vhostTemplate=Generic",
                    f"--siteUser={user}", f"--siteUserPassword={password}")


@pytest.fixture
def cloudpanel(tmp_path):
    base = tmp_path / "server"   # tmp_path/home is provisiond's own home
    bin_dir = base / "bin"
    bin_dir.mkdir(parents=True)
    folders = {"CLPCTL_HOME_ROOT": base / "home", "CLPCTL_NGINX_DIR": base / "nginx"}
    for script in [clpctl.install_wrapper(bin_dir, base / "clpctl.json"),
                   *clpctl.install_account_tools(bin_dir, base / "clpctl.json")]:
        # The folders ride in the scripts: tests/sshd.py writes one SetEnv line per variable and
        # sshd keeps only the first SetEnv line, so only PATH reaches the SSH sessions.
        shebang, rest = script.read_text().split("\n", 1)
        exports = "".join(f"export {name}={path}\n" for name, path in folders.items())
        script.write_text(f"{shebang}\n{exports}{rest}")
    for name in ("nginx", "systemctl"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {base / "shim-calls.log"}\n')
        (bin_dir / name).chmod(0o755)
    (base / "home").mkdir()
    (base / "nginx" / "sites-enabled").mkdir(parents=True)
    with Sshd(base / "sshd", env={"PATH": f"{bin_dir}:{SYSTEM_PATH}"}) as sshd:
        yield CloudPanelServer(base, sshd)


@pytest.fixture
def cloudpanel_setup(database, registry, vault, cloudpanel):
    """Group 'web', server 'clp1' (the loopback sshd), product 'starter' (PHP 8.2 sites)."""
    catalog.add_group("web")
    server = catalog.add_server(registry, vault, name="clp1", panel="cloudpanel", host="127.0.0.1",
                                port=cloudpanel.sshd.port, group_name="web",
                                credentials={"private_key": cloudpanel.sshd.client_key,
                                             "python_interpreter": "/usr/bin/python3",
                                             "home_root": str(cloudpanel.home),
                                             "nginx_dir": str(cloudpanel.nginx)})
    product = catalog.add_product(registry, name="starter", panel="cloudpanel", group_name="web",
                                  package="php82", config={"php_version": "8.2"})
    return server, product


def test_site_lifecycle_end_to_end(cloudpanel_setup, registry, vault, cloudpanel, worker, settings):
    server = Server.get(Server.name == "clp1")
    assert server.host_key == cloudpanel.sshd.host_key  # pinned by `server add`
    report = run_server_test(settings, vault, registry, server)
    assert report["health"] == "ok", report
    assert "Generic" in report["reported"]["vhost_templates"]

    # The core names the user after the first label ("www"); a CloudPanel site's user is chosen.
    service, job = lifecycle.order(registry, vault, product="starter", domain="www.shop.example.com",
                                   email="owner@shop.example.com", ref="INV-100", username="shop")
    job = settle(worker, job)
    service = Service.get_by_id(service.id)
    assert job.status == "succeeded", job.last_error
    assert service.status == "active" and service.remote_id == "shop"
    site = cloudpanel.sites["www.shop.example.com"]
    assert (site["type"], site["phpVersion"], site["vhostTemplate"], site["siteUser"]) == ("php", "8.2", "Generic", "shop")
    first_password = vault.decrypt(service.password)
    assert site["siteUserPassword"] == first_password  # set on stdin after site:add's one-time password
    assert (cloudpanel.home / "shop" / "htdocs" / "www.shop.example.com").is_dir()
    own_vhost = cloudpanel.vhost("www.shop.example.com").read_text()

    # A create whose answer was lost runs again: the site is this service's, nothing is added.
    again, _ = queue.enqueue("create", service=service, server=service.server, idempotency_key="create-again")
    assert settle(worker, again).status == "succeeded"
    assert list(cloudpanel.sites) == ["www.shop.example.com"]

    site = lambda: cloudpanel.sites["www.shop.example.com"]  # noqa: E731
    vhost = lambda: cloudpanel.vhost("www.shop.example.com").read_text()  # noqa: E731
    block = cloudpanel.suspension("www.shop.example.com")
    serving = lambda: cloudpanel.serving("www.shop.example.com")  # noqa: E731

    def renew_certificate() -> bool:
        """CloudPanel writes the vhost again from its database, as on every certificate renewal."""
        cloudpanel.clpctl("lets-encrypt:install:certificate", "--domainName=www.shop.example.com")
        return "certificate: lets-encrypt" in vhost()

    steps = [
        ("suspend", {"reason": "overdue"}, "suspended",
         lambda: site()["suspended"] and site()["expiredate"] == "1" and vhost() == own_vhost
         and serving() == block and block.read_text().startswith(MAINTENANCE) and "return 503" in block.read_text()
         and "server_name www.shop.example.com;" in block.read_text() and "listen 443 ssl;" in block.read_text()
         and "ssl_certificate /etc/nginx/ssl-certificates/www.shop.example.com.crt;" in block.read_text()
         and cloudpanel.shim_calls() == ["nginx -t", "systemctl reload nginx"]
         # the regeneration that lifted the former vhost swap leaves the suspension in place
         and renew_certificate() and vhost() != own_vhost and serving() == block),
        ("suspend", {"reason": "overdue"}, "suspended",            # nothing to write again
         lambda: site()["suspended"] and len(cloudpanel.shim_calls()) == 2 and serving() == block),
        ("change_password", {}, "suspended",                       # a new password keeps the lock
         lambda: site()["suspended"] and site()["siteUserPassword"] != first_password and serving() == block),
        ("unsuspend", {}, "active",
         lambda: not site()["suspended"] and site()["expiredate"] == "" and not block.exists()
         and serving() == cloudpanel.vhost("www.shop.example.com") and "certificate: lets-encrypt" in vhost()
         and len(cloudpanel.shim_calls()) == 4),
        ("unsuspend", {}, "active", lambda: serving() == cloudpanel.vhost("www.shop.example.com")
         and len(cloudpanel.shim_calls()) == 4),
        ("change_password", {}, "active", lambda: not site()["suspended"]),
    ]
    for action, kwargs, status, on_server in steps:
        current = Service.get_by_id(service.id).status
        if action in ("suspend", "unsuspend") and current == status:   # ask again for the same state
            Service.update(status="active" if action == "suspend" else "suspended").where(
                Service.id == service.id).execute()
        job = settle(worker, lifecycle.request(registry, vault, "INV-100", action, **kwargs))
        assert job.status == "succeeded", (action, job.last_error)
        assert Service.get_by_id(service.id).status == status
        assert on_server(), action
    new_password = vault.decrypt(Service.get_by_id(service.id).password)
    assert site()["siteUserPassword"] == new_password != first_password

    job = settle(worker, lifecycle.request(registry, vault, "INV-100", "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"
    assert cloudpanel.sites == {} and not (cloudpanel.home / "shop").exists()
    assert not cloudpanel.vhost("www.shop.example.com").exists()

    logs = list(ProvisioningLog.select())
    assert len(logs) == 9 and all(row.status == "succeeded" for row in logs)
    passwords = [first_password, new_password] + [vault.decrypt_json(j.secret_params, "test")["password"]
                                                  for j in Job.select().where(Job.action == "change_password")]
    for row in logs:
        assert (Path(row.artifacts_path) / "stdout.txt").exists()
        assert_no_secret(row, *passwords, cloudpanel.sshd.client_key.splitlines()[1])


def test_unsuspend_restores_a_site_suspended_by_the_former_vhost_swap(cloudpanel_setup, registry, vault,
                                                                     cloudpanel, worker):
    """Services suspended before the suspension had its own file come back with their own vhost."""
    service, job = lifecycle.order(registry, vault, product="starter", domain="old.example.com",
                                   email="me@old.example.com", username="old")
    assert settle(worker, job).status == "succeeded", job.last_error
    vhost, saved = cloudpanel.vhost("old.example.com"), cloudpanel.saved("old.example.com")
    own_vhost = vhost.read_text()
    saved.parent.mkdir(parents=True)                    # what the former suspend.yml left behind
    saved.write_text(own_vhost)
    vhost.write_text(f"{MAINTENANCE}. old.example.com's own vhost is kept in {saved}.\nserver {{\n"
                     "  server_name old.example.com;\n  location / {\n    return 503;\n  }\n}\n")
    subprocess.run([str(cloudpanel.bin / "usermod"), "-L", "-e", "1", "old"], env={"PATH": SYSTEM_PATH}, check=True)
    Service.update(status="suspended").where(Service.id == service.id).execute()

    job = settle(worker, lifecycle.request(registry, vault, service.ref, "unsuspend"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "active"
    assert vhost.read_text() == own_vhost and not saved.exists()
    assert cloudpanel.serving("old.example.com") == vhost
    site = cloudpanel.sites["old.example.com"]
    assert not site["suspended"] and site["expiredate"] == ""
    assert cloudpanel.shim_calls() == ["nginx -t", "systemctl reload nginx"]


def test_terminate_of_a_suspended_site_leaves_no_suspension_behind(cloudpanel_setup, registry, vault, cloudpanel,
                                                                   worker):
    """The suspension's block names the site's certificate: it must not outlive the site."""
    service, job = lifecycle.order(registry, vault, product="starter", domain="gone.example.com",
                                   email="me@gone.example.com")
    assert settle(worker, job).status == "succeeded", job.last_error
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "suspend", reason="overdue"))
    assert job.status == "succeeded", job.last_error
    assert cloudpanel.serving("gone.example.com") == cloudpanel.suspension("gone.example.com")
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
    assert job.status == "succeeded", job.last_error
    assert cloudpanel.sites == {} and not cloudpanel.suspension("gone.example.com").exists()
    assert cloudpanel.serving("gone.example.com") is None


def test_terminate_of_a_site_gone_from_the_server_is_done(cloudpanel_setup, registry, vault, cloudpanel, worker):
    service, job = lifecycle.order(registry, vault, product="starter", domain="gone.example.com",
                                   email="me@gone.example.com")
    assert settle(worker, job).status == "succeeded"
    cloudpanel.clpctl("site:delete", "--domainName=gone.example.com", "--force")  # behind our back
    job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
    assert job.status == "succeeded", job.last_error
    assert Service.get_by_id(service.id).status == "terminated"


@pytest.mark.parametrize("case", ["duplicate_domain", "unknown_template", "site_user_of_another_site", "wrong_key"])
def test_refusals_fail_once_with_the_panel_reason(case, cloudpanel_setup, registry, vault, cloudpanel,
                                                  worker, tmp_path):
    product, domain = "starter", "taken.example.com"
    if case == "duplicate_domain":
        cloudpanel.add_php_site("taken.example.com", "squatter")
        expected_task, expected = "Check clpctl's answer to site:add", \
            "clpctl site:add:php: domainName: This value already exists."
    elif case == "unknown_template":
        catalog.add_product(registry, name="odd", panel="cloudpanel", group_name="web", package="odd",
                            config={"vhost_template": "Nope"})
        product = "odd"
        expected_task, expected = "Check clpctl's answer to site:add", \
            "vhostTemplate: The value you selected is not a valid choice."
    elif case == "site_user_of_another_site":
        cloudpanel.add_php_site("elsewhere.example.com", "taken")
        expected_task, expected = "Refuse a site user of another site", \
            "the site user taken exists on the server for another site"
    else:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")], check=True)
        server = catalog.server("clp1")
        catalog.update_server_credentials(registry, vault, server,
                                          {"private_key": (tmp_path / "stranger").read_text()})
        expected_task, expected = "Read the site's state on the server", "Permission denied (publickey"
    before = cloudpanel.sites
    service, job = lifecycle.order(registry, vault, product=product, domain=domain, email="me@taken.example.com")
    assert service.username == "taken"
    job = settle(worker, job)
    log = last_log(job)
    assert job.attempts == 1 and log.failed_task == expected_task, (log.failed_task, log.message)
    assert expected in log.message
    assert cloudpanel.sites == before
    assert_no_secret(log, vault.decrypt(service.password), cloudpanel.sshd.client_key.splitlines()[1])
    # wrong_key: a refused SSH key is permanent (no retry makes it welcome), like every refusal
    assert job.status == "failed" and Service.get_by_id(service.id).status == "failed"
    if case == "site_user_of_another_site":
        # Terminating the failed service must not delete the other site of that user.
        job = settle(worker, lifecycle.request(registry, vault, service.ref, "terminate"))
        assert job.status == "needs_attention"
        assert "not deleted: the site user taken on the server has no site taken.example.com" in job.last_error
        assert "elsewhere.example.com" in cloudpanel.sites


def test_list_accounts_reads_every_site_from_its_vhost_and_site_root(cloudpanel_setup, registry, vault, cloudpanel,
                                                                   worker, settings):
    """Sites made by provisiond (one suspended) and one made in CloudPanel by hand, each once;
    provisiond's suspension file is no site of its own."""
    server, _ = cloudpanel_setup
    for domain, user, ref in (("shop.example.com", "shop", "INV-1"), ("late.example.com", "late", "INV-2")):
        _, job = lifecycle.order(registry, vault, product="starter", domain=domain, email=f"owner@{domain}",
                                 ref=ref, username=user)
        assert settle(worker, job).status == "succeeded", job.last_error
    assert settle(worker, lifecycle.request(registry, vault, "INV-2", "suspend", reason="overdue")).status == "succeeded"
    assert cloudpanel.suspension("late.example.com").exists()
    cloudpanel.add_php_site("hand.example.net", "handmade")

    answer = actions.run(settings, vault, registry, action="list_accounts", server=server)
    assert sorted(answer["accounts"], key=lambda a: a["username"]) == [
        {"username": "handmade", "domain": "hand.example.net", "package": None, "suspended": False, "email": None},
        {"username": "late", "domain": "late.example.com", "package": None, "suspended": True, "email": None},
        {"username": "shop", "domain": "shop.example.com", "package": None, "suspended": False, "email": None},
    ]
    text = json.dumps(answer)
    assert "Other-password-123" not in text
    assert not any(vault.decrypt(s.password) in text for s in Service.select())
