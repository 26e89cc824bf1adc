"""What a step role needs of a server's key, and whether the key has it.

A step role says which panel it is for and which panel commands it runs, in its
``meta/provisiond.yml``::

    panel: hestia
    needs:
      commands: [v-list-databases, v-add-database]

A panel's manifest says what a key may run (``api_keys``): the server credential naming the
key's permissions (``credential``), that credential's value for a key without limits (``all``),
and, where the panel grants commands in named presets (Hestia's install/common/api/*), each
preset's commands; without ``presets`` the credential lists commands (a DirectAdmin login key).

provisiond cannot ask a panel what its key may run: the operator states it in that credential.
So ``panels check`` (no servers) reports each step the manifest's default key cannot run, and
``product add`` each server of the product's group whose stated key cannot run a step. Both are
warnings: the statement may be wrong either way, and the panel's refusal at run time (logged on
the step's row) is the final word.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import yaml

from provisiond import step_secrets
from provisiond.panels import Panel


def role_meta(role_dirs: Sequence[Path], role: str) -> dict:
    """The role's ``meta/provisiond.yml`` from the first folder that has the role; {} if none
    (a broken one is step_secrets.declared's to refuse)."""
    folder = step_secrets.role_folder(role, role_dirs)
    if folder is None or not (folder / step_secrets.META_FILE).is_file():
        return {}
    try:
        loaded = yaml.safe_load((folder / step_secrets.META_FILE).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def step_roles(role_dirs: Sequence[Path]) -> dict[str, dict]:
    """Every role of the folders that declares a panel (first folder wins), with its meta."""
    found: dict[str, dict] = {}
    for folder in role_dirs:
        for role in sorted(p.parent.name for p in Path(folder).glob("*/tasks") if p.is_dir()):
            if role not in found:
                meta = role_meta([folder], role)
                if meta.get("panel"):
                    found[role] = meta
    return found


def needed(meta: dict) -> list[str]:
    return [str(c) for c in ((meta.get("needs") or {}).get("commands") or ())]


def allowed(panel: Panel, value: str | None) -> set[str] | None:
    """The commands a key stated as ``value`` may run; None: every command."""
    spec = panel.api_keys
    value = (value if value is not None else _default(panel)) or ""
    if value == spec.get("all", "all"):
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    presets = spec.get("presets")
    if presets is None:
        return set(names)
    return {str(c) for name in names for c in (presets.get(name) or ())}


def missing(panel: Panel, meta: dict, value: str | None) -> list[str]:
    """The commands of the step the key cannot run (none when the panel states no key rules)."""
    if not panel.api_keys:
        return []
    can = allowed(panel, value)
    return [] if can is None else [c for c in needed(meta) if c not in can]


def remedy(panel: Panel, commands: Iterable[str]) -> str:
    """Which key would run ``commands``: the presets that hold them all, else an unlimited key."""
    commands = set(commands)
    spec = panel.api_keys
    holding = [name for name, cmds in (spec.get("presets") or {}).items() if commands <= set(cmds)]
    credential = spec.get("credential", "key")
    if holding:
        return f"a key with the preset {' or '.join(holding)} as well ({credential} e.g. {_default(panel)},{holding[0]})"
    if spec.get("presets") is not None:
        return f"an admin key without a permission list, since no preset has them ({credential}: {spec.get('all', 'all')})"
    return f"a key allowed {', '.join(sorted(commands))} ({credential})"


def folder_warnings(panel: Panel, role_dirs: Sequence[Path]) -> list[str]:
    """``panels check``: each step role of this panel the manifest's default key cannot run."""
    warnings = []
    for role, meta in step_roles(role_dirs).items():
        if meta.get("panel") != panel.id:
            continue
        lacking = missing(panel, meta, None)
        if lacking:
            warnings.append(f"step {role} runs {', '.join(lacking)}, which a key stated as "
                            f"{panel.api_keys.get('credential')}={_default(panel)} (the default) may not "
                            f"run: the server needs {remedy(panel, lacking)}")
    return warnings


def product_warnings(panel: Panel, steps: Sequence[str], servers: Iterable, role_dirs: Sequence[Path]) -> list[str]:
    """``product add``: a step of another panel, and each server (of the product's panel, in
    its group) whose stated key cannot run a step."""
    warnings, metas = [], {step: role_meta(role_dirs, step) for step in steps}
    for step, meta in metas.items():
        if meta.get("panel") and meta["panel"] != panel.id:
            warnings.append(f"step {step} is a role for {meta['panel']}, not {panel.id}")
    credential = panel.api_keys.get("credential")
    for server in servers:
        stated = (server.credentials or {}).get(credential) if credential else None
        for step, meta in metas.items():
            lacking = missing(panel, meta, stated) if meta.get("panel") in (None, panel.id) else []
            if lacking:
                warnings.append(f"server {server.name}'s key ({credential}={stated or _default(panel)}) may not "
                                f"run {', '.join(lacking)} of step {step}: it needs {remedy(panel, lacking)}; "
                                "until then that step fails on it with the panel's refusal")
    return warnings


def _default(panel: Panel) -> str:
    credential = panel.api_keys.get("credential")
    for field in panel.credentials:
        if field.name == credential:
            return str(field.default if field.default is not None else "")
    return str(panel.api_keys.get("all", "all"))
