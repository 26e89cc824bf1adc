"""Secrets a product's steps need (a mailbox's or a database user's password), made once per service.

A step role declares them in ``roles/<role>/meta/provisiond.yml``::

    secrets:
      password: {length: 20}              # optional symbols: '!#%+-=_' as panel.yaml's password

Before a create runs, the worker asks ``for_run`` for the secrets of the product's steps: each is
generated the first time and stored encrypted with the vault (table ``step_secret``, one row per
service, step and name), so a retry, which redoes the steps, passes the same values. The run gets
them as ``account_secrets[inventory_hostname].steps.<role>.<name>``, and they are among the
run's redacted values. The welcome mail lists them (``stored``) only when the product says so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

import yaml

from provisiond.accounts import generate_password
from provisiond.crypto import Vault
from provisiond.errors import ValidationError
from provisiond.models import StepSecret
from provisiond.panels import PasswordRules

META_FILE = Path("meta") / "provisiond.yml"
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,99}$")
RULE_KEYS = {"length", "symbols"}
# meta/provisiond.yml's keys: ``secrets`` (here), ``panel`` and ``needs`` (stepneeds.py).
META_KEYS = {"secrets", "panel", "needs"}
_DEFAULT = PasswordRules()


def role_folder(role: str, role_dirs: Iterable[Path]) -> Path | None:
    """The role's folder, found as Ansible finds it: the first of ``role_dirs`` that has it."""
    for folder in role_dirs:
        if (Path(folder) / role / "tasks").is_dir():
            return Path(folder) / role
    return None


def declared(role: str, role_dirs: Iterable[Path]) -> dict[str, PasswordRules]:
    """The secrets a role declares (name → rules); a ValidationError on field ``step`` names
    what is wrong with its ``meta/provisiond.yml``."""
    folder = role_folder(role, role_dirs)
    if folder is None or not (folder / META_FILE).is_file():
        return {}
    where = folder / META_FILE
    try:
        meta = yaml.safe_load(where.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationError("step", f"{where}: cannot be read ({exc})") from None
    if not isinstance(meta, dict) or set(meta) - META_KEYS:
        raise ValidationError("step", f"{where}: expected a mapping of the keys {', '.join(sorted(META_KEYS))}")
    secrets = meta.get("secrets") or {}
    if not isinstance(secrets, dict):
        raise ValidationError("step", f"{where}: 'secrets' must map each secret's name to its rules")
    return {str(name): _rules(where, name, rules) for name, rules in secrets.items()}


def _rules(where: Path, name, raw) -> PasswordRules:
    raw = raw or {}
    if not NAME.match(str(name)) or not isinstance(raw, dict) or set(raw) - RULE_KEYS:
        raise ValidationError("step", f"{where}: secret {name!r} must be a lowercase name with rules "
                              f"{sorted(RULE_KEYS)}")
    length = raw.get("length", _DEFAULT.length)
    symbols = raw.get("symbols", _DEFAULT.symbols)
    if not isinstance(length, int) or isinstance(length, bool) \
            or not _DEFAULT.min_length <= length <= _DEFAULT.max_length:
        raise ValidationError("step", f"{where}: secret {name}: length must be "
                              f"{_DEFAULT.min_length} to {_DEFAULT.max_length}")
    if not isinstance(symbols, str) or not set(symbols) <= set(_DEFAULT.allowed_symbols):
        raise ValidationError("step", f"{where}: secret {name}: symbols may only be some of "
                              f"{_DEFAULT.allowed_symbols}")
    return PasswordRules(length=length, symbols=symbols)


def for_run(service_id: int, roles: Sequence[str], role_dirs: Iterable[Path],
            vault: Vault) -> dict[str, dict[str, str]]:
    """{role: {name: value}} for the steps that declare secrets; made and stored on first use,
    the stored values afterwards."""
    role_dirs = list(role_dirs)
    wanted = {role: rules for role in roles if (rules := declared(role, role_dirs))}
    if not wanted:
        return {}
    have = stored(service_id, vault)
    missing = [(role, name, rules) for role, secrets in wanted.items() for name, rules in secrets.items()
               if name not in have.get(role, {})]
    for role, name, rules in missing:
        # Another writer may have made it meanwhile: theirs stands, and is read back below.
        StepSecret.insert(service=service_id, step=role, name=name,
                          value=vault.encrypt(generate_password(rules))).on_conflict_ignore().execute()
    if missing:
        have = stored(service_id, vault)
    return {role: {name: have[role][name] for name in secrets} for role, secrets in wanted.items()}


def stored(service_id: int, vault: Vault) -> dict[str, dict[str, str]]:
    """Every step secret of a service, decrypted: {role: {name: value}}."""
    found: dict[str, dict[str, str]] = {}
    rows = (StepSecret.select(StepSecret.step, StepSecret.name, StepSecret.value)
            .where(StepSecret.service == service_id).order_by(StepSecret.step, StepSecret.name).tuples())
    for step, name, token in rows:
        found.setdefault(step, {})[name] = vault.decrypt(token, f"secret {name} of step {step}")
    return found
