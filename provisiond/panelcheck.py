"""``provisiond panels check``: validate manifests, render every action, syntax-check them.

Each panel's playbooks are rendered with sample data into a temporary folder and checked by
one ``ansible-playbook --syntax-check`` per panel; a broken panel is reported with its file
and field and never stops the others from being checked. Every variable a playbook (or a role
of its folder) reads must be in the contract (provisiond/contract.py, playbooks/CONTRACT.md):
``file:line: account.domian is not a documented variable (did you mean account.domain?)``.
A step role of the panel that the manifest's default key may not run is a warning
(stepneeds.py): the panel is not broken, a server's key may be wider.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2

from provisiond.config import bundled_dir
from provisiond.panels import OPTIONAL_ACTIONS, Registry
from provisiond import stepneeds, varcheck
from provisiond.render import render_playbook, roles_path


@dataclasses.dataclass
class PanelReport:
    panel: str
    ok: bool
    problems: list[str]
    path: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)


def _syntax_check(playbooks: list[Path], roles: list[Path]) -> str | None:
    env = dict(os.environ, ANSIBLE_ACTION_PLUGINS=str(bundled_dir("roles") / "panel_call" / "action_plugins"),
               ANSIBLE_ROLES_PATH=":".join(map(str, roles)), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    env = {k: v for k, v in env.items() if not k.startswith("PROVISIOND_")}
    binary = Path(sys.executable).with_name("ansible-playbook")
    argv = [str(binary) if binary.exists() else "ansible-playbook", "--syntax-check", "-i", "localhost,",
            *map(str, playbooks)]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode == 0:
        return None
    return (result.stderr.strip() or result.stdout.strip())[-2000:]


def _variables(panel, action: str, text: str) -> list[str]:
    """Undocumented variable reads of one rendered action and the roles of its folder."""
    allowed = varcheck.allowed_for([f.name for f in panel.credentials if not f.secret], panel.secret_fields)
    roles = [(str(p), p.read_text(encoding="utf-8")) for p in varcheck.role_files(panel.path)]
    return varcheck.problems([(str(panel.playbook_path(action)), text), *roles], allowed)


def _undeclared(panel) -> list[str]:
    """Optional lifecycle playbooks present in the folder that ``actions:`` leaves out: they never run."""
    return [f"{panel.playbook_path(action)}: {action} is not listed in actions: of panel.yaml, so it never "
            f"runs (add it to actions:, or remove the file)"
            for action in OPTIONAL_ACTIONS
            if panel.playbook_path(action).is_file() and not panel.supports(action)]


def check(registry: Registry, only: str | None = None, role_dirs=()) -> list[PanelReport]:
    """Every panel (or ``only``); ``role_dirs``: where step roles are found (default: bundled)."""
    reports = [PanelReport(pid, False, [problem]) for pid, problem in registry.problems.items()
               if only in (None, pid)]
    for panel in registry.panels.values():
        if only not in (None, panel.id):
            continue
        problems = _undeclared(panel)
        with tempfile.TemporaryDirectory(prefix=f"provisiond-check-{panel.id}-") as folder:
            rendered = []
            for action in panel.actions:
                try:
                    text = render_playbook(panel, action)
                except jinja2.TemplateError as exc:
                    problems.append(f"{panel.playbook_path(action)}: cannot be rendered: {exc}")
                    continue
                path = Path(folder) / f"{action}.yml"
                path.write_text(text, encoding="utf-8")
                rendered.append(path)
                problems += _variables(panel, action, text)
            if rendered:
                failure = _syntax_check(rendered, roles_path(panel))
                if failure:
                    problems.append(f"{panel.path}: ansible-playbook --syntax-check failed:\n{failure}")
        problems = list(dict.fromkeys(problems))  # a role read is found once per action
        warnings = stepneeds.folder_warnings(panel, role_dirs or [bundled_dir("roles")])
        reports.append(PanelReport(panel.id, not problems, problems, str(panel.path), warnings))
    return sorted(reports, key=lambda r: r.panel)
