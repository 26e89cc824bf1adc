"""The clpctl simulator against shared/panels/cloudpanel.md, run as a `clpctl` on PATH via subprocess."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from provisiond.sandbox import clpctl
from provisiond.sandbox.clpctl import install_account_tools, install_wrapper, load_state

PASSWORD = "!secretPassword!"


@pytest.fixture
def env(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    state = tmp_path / "state.json"
    install_wrapper(bin_dir, state)
    install_account_tools(bin_dir, state)
    environ = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                   CLPCTL_HOME_ROOT=str(tmp_path / "home"), CLPCTL_NGINX_DIR=str(tmp_path / "nginx"))
    environ.pop("CLPCTL_STATE", None)
    return {"environ": environ, "state": state, "home": tmp_path / "home", "nginx": tmp_path / "nginx"}


def run(env, *argv, program="clpctl", stdin=""):
    return subprocess.run([program, *argv], env=env["environ"], input=stdin, capture_output=True,
                          text=True, timeout=30)


def failed(result) -> bool:
    """The contract's failure detection: non-zero exit, or a ': This value' / error line."""
    text = result.stdout + result.stderr
    return result.returncode != 0 or ": This value" in text or "An error has occurred" in text


def add_php(env, domain="www.domain.com", user="john", **extra):
    args = {"domainName": domain, "phpVersion": "8.3", "vhostTemplate": "Generic",
            "siteUser": user, "siteUserPassword": PASSWORD, **extra}
    return run(env, "site:add:php", *(f"--{k}={v}" for k, v in args.items()))


def sites(env):
    return load_state(env["state"])["sites"]


# -- wrapper and console parsing -------------------------------------------------------------
def test_wrapper_is_an_executable_script(env, tmp_path):
    script = tmp_path / "bin" / "clpctl"
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith("#!/bin/sh\n")
    assert "CLPCTL_STATE=" in script.read_text()


def test_module_runs_directly_with_state_env(env):
    repo_root = str(Path(clpctl.__file__).resolve().parents[2])
    environ = dict(env["environ"], CLPCTL_STATE=str(env["state"]), PYTHONPATH=repo_root)
    result = subprocess.run([sys.executable, "-m", "provisiond.sandbox.clpctl", "vhost-templates:list"],
                            env=environ, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "Generic" in result.stdout
    del environ["CLPCTL_STATE"]
    result = subprocess.run([sys.executable, "-m", "provisiond.sandbox.clpctl", "user:list"],
                            env=environ, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0


@pytest.mark.parametrize("argv, message", [
    (["site:frobnicate"], 'Command "site:frobnicate" is not defined.'),
    (["site:delete", "--domainName=a.com", "--yes"], 'The "--yes" option does not exist.'),
    (["site:delete", "--domainName=a.com", "--force=1"], 'The "--force" option does not accept a value.'),
    (["site:delete", "--domainName"], 'The "--domainName" option requires a value.'),
    (["site:delete", "www.domain.com"], 'No arguments expected for "site:delete" command, got "www.domain.com".'),
    (["site:add:static", "--domainName=a.com", "--phpVersion=8.3"], 'The "--phpVersion" option does not exist.'),
    (["site:delete", "-f"], 'The "-f" option does not exist.'),
])
def test_console_refusals(env, argv, message):
    result = run(env, *argv)
    assert result.returncode == 1
    assert message in result.stderr
    assert not env["state"].exists()  # refused before the state was touched


def test_option_value_as_separate_token(env):
    result = run(env, "site:add:static", "--domainName", "static.com", "--siteUser", "stat",
                 "--siteUserPassword", PASSWORD)
    assert result.returncode == 0 and not failed(result)
    assert sites(env)["static.com"]["type"] == "static"


# -- sites -----------------------------------------------------------------------------------
def test_add_php_site(env):
    result = add_php(env)
    assert not failed(result), result.stdout + result.stderr
    site = sites(env)["www.domain.com"]
    assert (site["type"], site["phpVersion"], site["siteUser"], site["siteUserPassword"]) == (
        "php", "8.3", "john", PASSWORD)
    assert site["suspended"] is False
    assert (env["home"] / "john" / "htdocs" / "www.domain.com").is_dir()
    vhost = (env["nginx"] / "sites-enabled" / "www.domain.com.conf").read_text()
    assert "server_name www.domain.com;" in vhost
    assert f"root {env['home'] / 'john' / 'htdocs' / 'www.domain.com'};" in vhost


def test_values_with_shell_characters_pass_through_argv(env):
    password = "pa$$ 'word\"; rm -rf /"
    assert not failed(add_php(env, siteUserPassword=password))
    assert sites(env)["www.domain.com"]["siteUserPassword"] == password


@pytest.mark.parametrize("kind, extra", [
    ("nodejs", ["--nodejsVersion=22", "--appPort=3000"]),
    ("python", ["--pythonVersion=3.11", "--appPort=8080"]),
    ("reverse-proxy", ["--reverseProxyUrl=http://127.0.0.1:8000"]),
])
def test_other_site_kinds(env, kind, extra):
    result = run(env, f"site:add:{kind}", "--domainName=app.com", "--siteUser=app",
                 f"--siteUserPassword={PASSWORD}", *extra)
    assert not failed(result), result.stdout
    assert sites(env)["app.com"]["type"] == kind


def test_short_password_is_a_validation_line(env):
    result = add_php(env, siteUserPassword="short")
    assert failed(result) and result.returncode != 0
    assert "siteUserPassword: This value is too short. It should have 8 characters or more." in result.stdout
    assert sites(env) == {}


@pytest.mark.parametrize("missing", ["domainName", "phpVersion", "vhostTemplate", "siteUser", "siteUserPassword"])
def test_missing_option_is_blank_violation(env, missing):
    args = {"domainName": "www.domain.com", "phpVersion": "8.3", "vhostTemplate": "Generic",
            "siteUser": "john", "siteUserPassword": PASSWORD}
    del args[missing]
    result = run(env, "site:add:php", *(f"--{k}={v}" for k, v in args.items()))
    assert failed(result) and f"{missing}: This value should not be blank." in result.stdout


@pytest.mark.parametrize("extra, field", [
    ({"phpVersion": "5.6"}, "phpVersion"), ({"vhostTemplate": "Nope"}, "vhostTemplate"),
    ({"domainName": "not a domain"}, "domainName"), ({"siteUser": "John Doe"}, "siteUser"),
])
def test_invalid_values(env, extra, field):
    result = add_php(env, **extra)
    assert failed(result) and result.returncode != 0
    assert result.stdout.startswith(f"{field}: "), result.stdout
    assert sites(env) == {}


def test_existing_site_user_and_domain(env):
    assert not failed(add_php(env))
    same_user = add_php(env, domain="other.com")
    assert failed(same_user) and "user: This value already exists." in same_user.stdout
    same_domain = add_php(env, user="jane")
    assert failed(same_domain) and "domainName: This value already exists." in same_domain.stdout
    system_user = add_php(env, domain="third.com", user="root")
    assert failed(system_user)
    assert list(sites(env)) == ["www.domain.com"]


def test_delete_site_with_force(env):
    add_php(env)
    result = run(env, "site:delete", "--domainName=www.domain.com", "--force")
    assert not failed(result)
    assert sites(env) == {} and not (env["home"] / "john").exists()
    assert not (env["nginx"] / "sites-enabled" / "www.domain.com.conf").exists()


def test_delete_without_force_needs_typed_yes(env):
    add_php(env)
    refused = run(env, "site:delete", "--domainName=www.domain.com")
    assert failed(refused) and "www.domain.com" in sites(env)
    accepted = run(env, "site:delete", "--domainName=www.domain.com", stdin="yes\n")
    assert accepted.returncode == 0 and sites(env) == {}


def test_delete_unknown_site(env):
    result = run(env, "site:delete", "--domainName=missing.com", "--force")
    assert failed(result) and "An error has occurred" in result.stdout


# -- users, databases, certificates ----------------------------------------------------------
USER = ["--userName=john.doe", "--email=john.doe@domain.com", "--firstName=John", "--lastName=Doe",
        f"--password={PASSWORD}", "--role=user", "--sites=www.domain.com", "--timezone=UTC", "--status=1"]


def test_user_add_list_delete(env):
    add_php(env)
    assert not failed(run(env, "user:add", *USER))
    listed = run(env, "user:list")
    assert listed.returncode == 0
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in listed.stdout.splitlines()
            if line.startswith("|")]
    assert rows[0][0] == "User Name" and rows[1][:4] == ["john.doe", "John", "Doe", "john.doe@domain.com"]
    assert failed(run(env, "user:add", *USER))  # duplicate
    assert not failed(run(env, "user:delete", "--userName=john.doe"))
    assert failed(run(env, "user:delete", "--userName=john.doe"))
    assert load_state(env["state"])["users"] == {}


def test_user_list_does_not_show_site_users(env):
    add_php(env)
    assert "john" not in run(env, "user:list").stdout


@pytest.mark.parametrize("bad", ["--role=owner", "--timezone=Mars/Olympus", "--status=2",
                                 "--sites=missing.com", "--email=nope"])
def test_user_add_refusals(env, bad):
    add_php(env)
    key = bad.split("=")[0]
    args = [a for a in USER if not a.startswith(key + "=")] + [bad]
    result = run(env, "user:add", *args)
    assert failed(result) and result.returncode != 0
    assert load_state(env["state"])["users"] == {}


def test_db_add(env):
    add_php(env)
    args = ["--domainName=www.domain.com", "--databaseName=shop", "--databaseUserName=shopuser",
            f"--databaseUserPassword={PASSWORD}"]
    assert not failed(run(env, "db:add", *args))
    assert load_state(env["state"])["databases"]["shop"]["domainName"] == "www.domain.com"
    again = run(env, "db:add", *args)
    assert failed(again) and "databaseName: This value already exists." in again.stdout
    assert failed(run(env, "db:add", *(["--domainName=missing.com"] + args[1:])))


def test_lets_encrypt(env):
    add_php(env)
    assert not failed(run(env, "lets-encrypt:install:certificate", "--domainName=www.domain.com"))
    assert sites(env)["www.domain.com"]["certificate"] is True
    assert failed(run(env, "lets-encrypt:install:certificate", "--domainName=missing.com"))


# -- provisiond's emulated suspend -------------------------------------------------------------
def test_usermod_lock_and_unlock_mark_the_site(env):
    add_php(env)
    assert run(env, "-L", "-e", "1", "john", program="usermod").returncode == 0
    site = sites(env)["www.domain.com"]
    assert site["suspended"] is True and site["expiredate"] == "1"
    assert run(env, "-U", "-e", "", "john", program="usermod").returncode == 0
    site = sites(env)["www.domain.com"]
    assert site["suspended"] is False and site["expiredate"] == ""
    assert run(env, "-L", "nobody", program="usermod").returncode == 6
    assert run(env, "--frob", "john", program="usermod").returncode == 2


@pytest.mark.parametrize("argv, code, message", [
    (["john"], 2, "usermod: no options"),
    (["-L", "-U", "john"], 2, "usermod: the -L, -p, and -U flags are exclusive"),
    (["john", "john"], 2, "Usage: usermod"),
    ([], 2, "Usage: usermod"),
    (["-U", "nobody"], 6, "usermod: user 'nobody' does not exist"),   # looked up before the flags
    (["nobody"], 6, "usermod: user 'nobody' does not exist"),
])
def test_usermod_refuses_as_shadow_utils_does_and_changes_nothing(env, argv, code, message):
    add_php(env)
    assert run(env, "-L", "-e", "1", "john", program="usermod").returncode == 0
    result = run(env, *argv, program="usermod")
    assert (result.returncode, message in result.stderr) == (code, True), result.stderr
    site = sites(env)["www.domain.com"]
    assert site["suspended"] is True and site["expiredate"] == "1"


# -- concurrency -----------------------------------------------------------------------------
def test_concurrent_invocations_keep_every_change(env):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: add_php(env, domain=f"site{i}.com", user=f"user{i}"), range(12)))
    assert not any(failed(r) for r in results)
    assert len(sites(env)) == 12
    json.loads(env["state"].read_text())  # never left half-written


def test_concurrent_same_user_only_one_wins(env):
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: add_php(env, domain=f"race{i}.com", user="racer"), range(6)))
    assert sum(not failed(r) for r in results) == 1
    assert len(sites(env)) == 1


def test_chpasswd_sets_the_password_and_drops_the_lock(env):
    add_php(env)
    assert run(env, "-L", "-e", "1", "john", program="usermod").returncode == 0
    result = run(env, program="chpasswd", stdin="john:n3w pa:ss\n")
    assert result.returncode == 0, result.stderr
    site = sites(env)["www.domain.com"]
    assert (site["siteUserPassword"], site["suspended"], site["expiredate"]) == ("n3w pa:ss", False, "1")


@pytest.mark.parametrize("stdin, message", [("nobody:whatever-long\n", "line 1: user 'nobody' does not exist"),
                                            ("john:ok-password\njohn\n", "line 2: missing new password")])
def test_chpasswd_with_a_bad_line_changes_nothing(env, stdin, message):
    add_php(env)
    result = run(env, program="chpasswd", stdin=stdin)
    assert result.returncode == 1 and message in result.stderr
    assert sites(env)["www.domain.com"]["siteUserPassword"] == PASSWORD
    assert run(env, "-e", program="chpasswd").returncode == 2


# -- the vhost is CloudPanel's: written again from its database ------------------------------
def test_certificate_install_writes_the_vhost_again_from_the_database(env):
    add_php(env)
    vhost = env["nginx"] / "sites-enabled" / "www.domain.com.conf"
    vhost.write_text("# edited by hand\nserver { return 503; }\n")
    assert not failed(run(env, "lets-encrypt:install:certificate", "--domainName=www.domain.com"))
    text = vhost.read_text()
    assert "edited by hand" not in text and "server_name www.domain.com;" in text
    assert "certificate: lets-encrypt" in text


def test_a_vhost_editor_save_writes_the_vhost_again(env, monkeypatch):
    add_php(env)
    vhost = env["nginx"] / "sites-enabled" / "www.domain.com.conf"
    own = vhost.read_text()
    vhost.write_text("# edited by hand\n")
    monkeypatch.setenv("CLPCTL_HOME_ROOT", env["environ"]["CLPCTL_HOME_ROOT"])
    monkeypatch.setenv("CLPCTL_NGINX_DIR", env["environ"]["CLPCTL_NGINX_DIR"])
    clpctl.regenerate(env["state"], "www.domain.com")
    assert vhost.read_text() == own


def test_nginx_serves_the_first_file_in_sorted_order_that_names_the_host(env):
    add_php(env)
    enabled = env["nginx"] / "sites-enabled"
    assert clpctl.nginx_serves(env["nginx"], "www.domain.com") == enabled / "www.domain.com.conf"
    (enabled / "+provisiond-suspended-www.domain.com.conf").write_text("server {\n  server_name www.domain.com;\n}\n")
    (enabled / "zzz.conf").write_text("server {\n  server_name www.domain.com;\n}\n")
    assert clpctl.nginx_serves(env["nginx"], "www.domain.com") == enabled / "+provisiond-suspended-www.domain.com.conf"
    assert clpctl.nginx_serves(env["nginx"], "other.com") is None
