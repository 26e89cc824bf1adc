"""Adapters of the SSH panels: CloudPanel (clpctl) and a plain Linux host.

Each server is an OpenSSH sshd on loopback (tests/sshd.py) whose sessions find the panel's
tools first on PATH: for CloudPanel the clpctl simulator (provisiond.sandbox.clpctl, with its
``usermod`` and ``chpasswd`` shims), for Linux the real useradd family working in a throwaway
root (``root_dir``: copies of /etc/passwd, group, shadow, gshadow and login.defs, so no user is
ever created on this machine). nginx and systemctl are shims that record how they were called.
A 5xx of an SSH panel is an unreachable host: sshd is stopped for one attempt.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from pathlib import Path

from provisiond import catalog
from provisiond.models import Job, ProvisioningLog
from provisiond.sandbox import clpctl
from tests.integration.panels.adapters import Adapter, Refusal, Seen
from tests.sshd import Sshd

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAINTENANCE = "# provisiond: suspended"


def install_shims(bin_dir: Path, calls: Path, names=("nginx", "systemctl")) -> None:
    """Scripts that only write how they were called to ``calls``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n')
        script.chmod(0o755)


def reported(row: ProvisioningLog) -> dict:
    """What the playbook reported with set_stats, from the kept artifacts."""
    kept = json.loads(next(Path(row.artifacts_path).glob("job_*.json")).read_text())
    return kept["outcome"]["stats"]


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


class SshAdapter(Adapter):
    """The server is ``self.sshd``; its tools live in ``self.bin``, their calls in ``self.calls``."""

    transient_words = "Connection refused"

    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        self.base = tmp_path / "server"    # tmp_path/home is provisiond's own home
        self.bin, self.calls = self.base / "bin", self.base / "shim-calls.log"
        self.sshd: Sshd | None = None

    @property
    def secrets(self):
        return (self.sshd.client_key.splitlines()[1],)

    @contextlib.contextmanager
    def start(self):
        self.prepare()
        install_shims(self.bin, self.calls)
        with Sshd(self.base / "sshd", env={"PATH": f"{self.bin}:{SYSTEM_PATH}"}) as sshd:
            self.sshd = sshd
            yield self

    def prepare(self) -> None:
        raise NotImplementedError

    def register(self, registry, vault):
        catalog.add_group("web")
        server = catalog.add_server(registry, vault, name=self.server_name, panel=self.panel, host="127.0.0.1",
                                    port=self.sshd.port, group_name="web", credentials=self.credentials())
        product = catalog.add_product(registry, name="starter", panel=self.panel, group_name="web",
                                      package=self.package, config=self.product_config)
        return server, product

    def shim_calls(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def wrong_credentials(self):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.tmp_path / "stranger")],
                       check=True)
        return {"private_key": (self.tmp_path / "stranger").read_text()}

    @contextlib.contextmanager
    def unavailable_once(self):
        self.sshd.stop()
        try:
            yield
        finally:
            self.sshd.start()

    def changed_passwords(self, vault) -> list[str]:
        return [vault.decrypt_json(j.secret_params, "test")["password"]
                for j in Job.select().where(Job.action == "change_password")]


# -- CloudPanel (clpctl over SSH) --------------------------------------------------------------

class CloudPanelAdapter(SshAdapter):
    panel, server_name = "cloudpanel", "clp1"
    package, other_package = "php82", None
    package_seen = "8.2"   # a site's "package" is its kind and runtime
    product_config = {"php_version": "8.2"}
    bad_login = Refusal("Read the site's state on the server", "Permission denied (publickey")
    taken = Refusal("Refuse a site user of another site", "the site user taken exists on the server for another site")

    def prepare(self):
        self.state_file, self.home, self.nginx = self.base / "clpctl.json", self.base / "home", self.base / "nginx"
        self.bin.mkdir(parents=True)
        folders = {"CLPCTL_HOME_ROOT": self.home, "CLPCTL_NGINX_DIR": self.nginx}
        for script in [clpctl.install_wrapper(self.bin, self.state_file),
                       *clpctl.install_account_tools(self.bin, self.state_file)]:
            # The folders ride in the scripts: tests/sshd.py writes one SetEnv line per variable and
            # sshd keeps only the first SetEnv line, so only PATH reaches the SSH sessions.
            shebang, rest = script.read_text().split("\n", 1)
            exports = "".join(f"export {name}={path}\n" for name, path in folders.items())
            script.write_text(f"{shebang}\n{exports}{rest}")
        self.home.mkdir()
        (self.nginx / "sites-enabled").mkdir(parents=True)

    def credentials(self):
        return {"private_key": self.sshd.client_key, "python_interpreter": "/usr/bin/python3",
                "home_root": str(self.home), "nginx_dir": str(self.nginx)}

    @property
    def sites(self) -> dict:
        return clpctl.load_state(self.state_file)["sites"]

    def count(self):
        return len(self.sites)

    def state(self, user):
        found = [(domain, site) for domain, site in self.sites.items() if site["siteUser"] == user]
        if not found:
            return None
        [(domain, site)] = found
        return Seen(domain, site["suspended"], site["phpVersion"], site["siteUserPassword"])

    def vhost(self, domain: str) -> Path:
        return self.nginx / "sites-enabled" / f"{domain}.conf"

    def saved(self, domain: str) -> Path:
        return self.nginx / "provisiond-suspended" / f"{domain}.conf"

    def suspension(self, domain: str) -> Path:
        return self.nginx / "sites-enabled" / f"+provisiond-suspended-{domain}.conf"

    def serving(self, host: str) -> Path | None:
        """The file whose server block nginx would answer ``host`` with."""
        return clpctl.nginx_serves(self.nginx, host)

    def clpctl(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "clpctl"), *argv], env={"PATH": SYSTEM_PATH},
                              capture_output=True, text=True, check=True)

    def add_php_site(self, domain: str, user: str, password: str = "Other-password-123") -> None:
        self.clpctl("site:add:php", f"--domainName={domain}", "--phpVersion=8.3", "--vhostTemplate=Generic",
                    f"--siteUser={user}", f"--siteUserPassword={password}")

    def squat(self, user, domain):
        self.add_php_site(domain, user)
        self.squatted = self.sites

    def lose_create_answers(self, monkeypatch):
        """clpctl site:add makes the site, then says it failed (its answer lost on the way)."""
        real, record = self.bin / "clpctl-real", self.base / "lost.log"
        (self.bin / "clpctl").rename(real)
        (self.bin / "clpctl").write_text(
            '#!/bin/sh\ncase "$1" in site:add:*)\n'
            f'  {real} "$@" > /dev/null 2>&1; echo "$1 $?" >> {record}\n'
            '  echo "Connection reset by peer" >&2; exit 1;;\nesac\n'
            f'exec {real} "$@"\n')
        (self.bin / "clpctl").chmod(0o755)
        return lambda: record.read_text().splitlines() if record.exists() else []

    # The suspension is a server block of provisiond's own; the site's vhost is never edited.
    def after_created(self, ctx):
        site = self.sites["shop.example.com"]
        assert (site["type"], site["phpVersion"], site["vhostTemplate"]) == ("php", "8.2", "Generic")
        assert (self.home / "shop" / "htdocs" / "shop.example.com").is_dir()
        self.own_vhost = self.vhost("shop.example.com").read_text()

    def after_suspend(self, ctx):
        site, block = self.sites["shop.example.com"], self.suspension("shop.example.com")
        assert site["expiredate"] == "1" and self.vhost("shop.example.com").read_text() == self.own_vhost
        assert self.serving("shop.example.com") == block
        text = block.read_text()
        assert text.startswith(MAINTENANCE) and "return 503" in text
        assert "server_name shop.example.com;" in text and "listen 443 ssl;" in text
        assert "ssl_certificate /etc/nginx/ssl-certificates/shop.example.com.crt;" in text
        assert self.shim_calls() == ["nginx -t", "systemctl reload nginx"]
        # CloudPanel writes the vhost again from its database, as on every certificate renewal:
        # the regeneration that lifted the former vhost swap leaves the suspension in place.
        self.clpctl("lets-encrypt:install:certificate", "--domainName=shop.example.com")
        assert "certificate: lets-encrypt" in self.vhost("shop.example.com").read_text()
        assert self.vhost("shop.example.com").read_text() != self.own_vhost
        assert self.serving("shop.example.com") == block

    def after_connected(self, ctx):
        assert catalog.server(self.server_name).host_key == self.sshd.host_key  # pinned by `server add`
        assert "Generic" in ctx.report["reported"]["vhost_templates"]

    def after_suspend_again(self, ctx):   # nothing to write again
        assert len(self.shim_calls()) == 2 and self.serving("shop.example.com") == self.suspension("shop.example.com")
        first_password = self.sites["shop.example.com"]["siteUserPassword"]
        job = ctx.settle(ctx.request("change_password"))   # a new password keeps the lock
        assert job.status == "succeeded", job.last_error
        assert job.service.status == "suspended"
        site = self.sites["shop.example.com"]
        assert site["suspended"] and site["siteUserPassword"] != first_password
        assert self.serving("shop.example.com") == self.suspension("shop.example.com")

    def after_unsuspend(self, ctx):
        site = self.sites["shop.example.com"]
        assert site["expiredate"] == "" and not self.suspension("shop.example.com").exists()
        assert self.serving("shop.example.com") == self.vhost("shop.example.com")
        assert "certificate: lets-encrypt" in self.vhost("shop.example.com").read_text()
        assert len(self.shim_calls()) == 4

    def after_unsuspend_again(self, ctx):
        assert self.serving("shop.example.com") == self.vhost("shop.example.com")
        assert len(self.shim_calls()) == 4

    def after_terminate(self, ctx):
        assert not (self.home / "shop").exists() and not self.vhost("shop.example.com").exists()

    def after_refused_login(self, ctx):
        assert ctx.job.status == "failed"   # a refused SSH key is permanent: no retry makes it welcome

    def after_refused_taken(self, ctx):
        assert self.sites == self.squatted
        # Terminating the failed service must not delete the other site of that user.
        job = ctx.settle(ctx.request("terminate"))
        assert job.status == "needs_attention"
        assert "not deleted: the site user taken on the server has no site taken.example.com" in job.last_error
        assert "elsewhere.example.com" in self.sites

    def after_lost(self, ctx):
        assert ctx.lost == ["site:add:php 0"]


# -- a plain Linux host ------------------------------------------------------------------------

class LinuxAdapter(SshAdapter):
    panel, server_name = "linux", "lin1"
    product_config = {"quota_mb": 512}
    lost_answer_skip = ("linux documents no read-back of a lost answer: a create whose answer was lost is "
                        "finished by its retry (playbooks/linux/create.yml), which is the lifecycle's create again")
    bad_login = Refusal("Read the account's state on the host", "Permission denied (publickey")
    taken = Refusal("Refuse a user that is not this service's",
                    "the user taken exists on the host and was not created by provisiond")

    @contextlib.contextmanager
    def start(self):
        before = [Path("/etc", name).read_text() for name in ("passwd", "shadow", "group")]
        with super().start() as started:
            yield started
        # Every account command worked in the throwaway root.
        assert [Path("/etc", name).read_text() for name in ("passwd", "shadow", "group")] == before

    def prepare(self):
        self.root = self.tmp_path / "root"
        (self.root / "etc").mkdir(parents=True)
        for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
            shutil.copy2(Path("/etc") / name, self.root / "etc" / name)
        for folder in ("home", "etc/nginx/sites-available", "etc/nginx/sites-enabled"):
            (self.root / folder).mkdir(parents=True)

    def credentials(self):
        return {"private_key": self.sshd.client_key, "python_interpreter": "/usr/bin/python3",
                "root_dir": str(self.root)}

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

    def useradd(self, name: str) -> None:
        subprocess.run(["useradd", "-R", str(self.root), "-M", "-U", name], check=True, capture_output=True)

    def squat(self, user, domain):
        self.useradd(user)   # a user provisiond did not make

    def count(self):
        folder = self.record_path("x").parent
        return len(list(folder.iterdir())) if folder.is_dir() else 0

    def state(self, user):
        user_entry, shadow = self.entry(user), self.entry(user, "shadow")
        if user_entry is None:
            return None
        record = json.loads(self.record_path(user).read_text()) if self.record_path(user).exists() else {}
        return Seen(record.get("domain", user_entry[4]), shadow[1].startswith("!"), record.get("package"),
                    shadow[1])

    def password_is(self, user, password):
        return password_matches(password, self.entry(user, "shadow")[1].lstrip("!"))  # "!": locked

    def after_created(self, ctx):
        user = self.entry("shop")
        assert user[4:7] == ["shop.example.com", "/home/shop", "/bin/bash"]
        assert self.entry("shop", "group") is not None
        home, web_root = self.root / "home/shop", self.root / "home/shop/public_html"
        assert oct(home.stat().st_mode & 0o777) == "0o711" and home.stat().st_uid == int(user[2])
        assert web_root.is_dir() and (web_root.stat().st_uid, web_root.stat().st_gid) == (int(user[2]), int(user[3]))
        vhost = self.vhost("shop.example.com").read_text()
        assert vhost.startswith("# provisiond account: shop\n")
        assert "server_name shop.example.com www.shop.example.com;" in vhost and "root /home/shop/public_html;" in vhost
        assert self.link("shop.example.com").is_symlink()
        assert self.link("shop.example.com").resolve() == self.vhost("shop.example.com").resolve()
        record = json.loads(self.record_path("shop").read_text())
        assert (record["domain"], record["package"], record["quota_mb"]) == ("shop.example.com", "basic", 512)
        assert oct(self.record_path("shop").stat().st_mode & 0o777) == "0o600"
        assert reported(ctx.log)["quota"].startswith("skipped: ")  # no user quotas on a tmp root
        assert self.shim_calls() == ["nginx -t", "systemctl reload nginx"]
        self.own_vhost = vhost

    def after_created_again(self, ctx):   # the account is this service's: nothing changes
        assert self.vhost("shop.example.com").read_text() == self.own_vhost and len(self.shim_calls()) == 2

    def after_suspend(self, ctx):
        assert self.entry("shop", "shadow")[7] == "1"
        assert not self.link("shop.example.com").exists() and self.vhost("shop.example.com").exists()
        assert self.shim_calls()[-1] == "systemctl reload nginx"

    def after_suspend_again(self, ctx):   # nothing to do
        assert len(self.shim_calls()) == 3
        job = ctx.settle(ctx.request("change_password"))
        assert job.status == "succeeded", job.last_error
        assert job.service.status == "suspended"
        assert self.entry("shop", "shadow")[1].startswith("!")   # still locked

    def after_unsuspend(self, ctx):
        assert self.entry("shop", "shadow")[7] == "" and self.link("shop.example.com").is_symlink()
        assert self.shim_calls()[-2:] == ["nginx -t", "systemctl reload nginx"]

    def after_unsuspend_again(self, ctx):   # nothing to do
        assert len(self.shim_calls()) == 5

    def after_change_package(self, ctx):
        assert json.loads(self.record_path("shop").read_text())["package"] == "pro"
        assert reported(ctx.log)["package"] == "pro"

    def after_terminate(self, ctx):
        assert self.entry("shop", "shadow") is None and self.entry("shop", "group") is None
        assert not (self.root / "home/shop").exists()
        assert not self.vhost("shop.example.com").exists() and not self.link("shop.example.com").exists()
        assert not self.record_path("shop").exists()

    def after_refused_taken(self, ctx):
        assert self.entry("taken")[5] == "/home/taken" and not self.record_path("taken").exists()
        # Terminating the failed service must not remove a user it never had.
        job = ctx.settle(ctx.request("terminate"))
        assert job.status == "needs_attention"
        assert "not removed: the user taken on the host was not created by provisiond" in job.last_error
        assert self.entry("taken") is not None
        assert self.shim_calls() == []
