"""The panels' playbooks and the shared roles pass ansible-lint's production profile."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_playbooks_and_roles_pass_ansible_lint_production_profile():
    binary = Path(sys.executable).with_name("ansible-lint")
    command = str(binary) if binary.exists() else shutil.which("ansible-lint")
    if command is None:
        pytest.fail("ansible-lint is not installed (it comes with the test extra)")
    result = subprocess.run([command, "--nocolor", "--format=pep8", "playbooks", "roles"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    problems = [line for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode == 0, "\n".join(problems) or result.stderr[-2000:]
