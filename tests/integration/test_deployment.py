"""provisiond as a service: started by systemd with an empty environment and the virtualenv's
absolute ``bin/provisiond``, from another directory, under the unit shipped in config/.

`.ci/run` goes further: it installs the project non-editable in a fresh virtualenv and runs
``env -i HOME=... /abs/venv/bin/provisiond demo`` from another directory.
"""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisiond import config

UNIT = config.bundled_dir("config") / "provisiond.service"


def installed_command() -> list[str]:
    """The entry point pip installed beside this interpreter (what a unit's ExecStart names)."""
    script = Path(sys.executable).parent / "provisiond"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "provisiond.cli"]


def test_a_run_started_with_an_empty_environment_finds_ansible(cpanel_setup, settings, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # What systemd gives a service: no virtualenv on PATH, nothing inherited from a shell.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PROVISIOND_HOME": str(settings.home),
           "PROVISIOND_DATABASE_URL": settings.database_url}
    out = subprocess.run([*installed_command(), "--json", "server", "test", "whm1"], cwd=elsewhere,
                         env=env, capture_output=True, text=True, timeout=120)
    outcome = json.loads(out.stdout or "{}")
    assert out.returncode == 0, (outcome, out.stderr)
    assert outcome["health"] == "ok" and outcome["reported"]


def unit_sections() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(UNIT.read_text())
    return parser


def test_the_shipped_unit_runs_hardened_as_its_own_user():
    service = unit_sections()["Service"]
    home = service["Environment"].split("PROVISIOND_HOME=", 1)[1].split()[0]
    assert service["User"] == "provisiond" and service["Restart"] == "on-failure"
    assert service["ExecStart"].split()[0].startswith("/") and service["ExecStart"].endswith(" run")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert (service["ProtectSystem"], service["ReadWritePaths"]) == ("strict", home)
    assert {service[k] for k in ("PrivateTmp", "NoNewPrivileges", "ProtectHome")} == {"yes"}
    assert service["KillMode"] == "mixed"  # SIGTERM to the daemon alone: running playbooks finish


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_shipped_unit(tmp_path):
    unit = tmp_path / "provisiond.service"
    start = unit_sections()["Service"]["ExecStart"].split()[0]
    unit.write_text(UNIT.read_text().replace(start, installed_command()[0]))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr == "", out.stderr
