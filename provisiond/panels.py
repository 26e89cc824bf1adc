"""Panel registry: each ``<dir>/<panel>/panel.yaml`` found at call time is a panel.

Nothing is cached across ticks, so a folder dropped in is usable on the next tick and a broken
one is reported (file and field) and skipped while the others keep working. Folders in
``playbooks_path`` come before the bundled ones; the first folder with a given id wins.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from provisiond.crypto import MASK
from provisiond.errors import PanelError, ValidationError

LIFECYCLE_ACTIONS = ("create", "suspend", "unsuspend", "terminate", "change_package",
                     "change_password", "test_connection")
# Lifecycle actions a panel may leave out; provisiond acts without a run when it does (renew:
# the new paid-until is recorded, no job; provisiond.renew).
OPTIONAL_ACTIONS = ("renew",)
FIELD_TYPES = {"str": str, "int": int, "bool": bool}
PANEL_ID = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
MANIFEST_KEYS = {"id", "name", "description", "connection", "default_port", "credentials", "package",
                 "actions", "username", "password", "admin_actions", "notes", "final_backup", "api_keys",
                 "checkout"}
# What an order names itself: a checkout field of the same name would be a second key for it.
ORDER_KEYS = frozenset({"product", "domain", "email", "name", "username", "ref", "paid_until", "password",
                        "variant", "fields"})
CHECKOUT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    type: str = "str"
    label: str = ""
    required: bool = False
    secret: bool = False
    default: Any = None
    choices: tuple = ()
    pattern: str | None = None
    min: int | None = None
    max: int | None = None

    def coerce(self, where: str, value: Any) -> Any:
        """Convert a CLI/API value to this field's type, or raise naming the field."""
        name = f"{where}.{self.name}"
        if self.type == "bool":
            if isinstance(value, bool):
                result = value
            elif str(value).lower() in ("1", "true", "yes", "on"):
                result = True
            elif str(value).lower() in ("0", "false", "no", "off"):
                result = False
            else:
                raise ValidationError(name, f"expected true or false, got {value!r}")
        elif self.type == "int":
            if isinstance(value, bool):
                raise ValidationError(name, f"expected a whole number, got {value!r}")
            try:
                result = int(value)
            except (TypeError, ValueError):
                raise ValidationError(name, f"expected a whole number, got {value!r}") from None
            if self.min is not None and result < self.min:
                raise ValidationError(name, f"must be at least {self.min}")
            if self.max is not None and result > self.max:
                raise ValidationError(name, f"must be at most {self.max}")
        else:
            result = str(value)
            if self.pattern and not re.fullmatch(self.pattern, result):
                raise ValidationError(name, "has characters or a form this panel does not accept")
        if self.choices and result not in self.choices:
            raise ValidationError(name, f"must be one of {', '.join(map(str, self.choices))}")
        return result


def check_fields(where: str, fields: tuple[Field, ...], given: Mapping[str, Any], unknown: str) -> dict:
    """Values checked against field definitions, defaults filled in; errors name ``where.field``."""
    known = {f.name: f for f in fields}
    for name in given:
        if name not in known:
            raise ValidationError(f"{where}.{name}", f"{unknown} (fields: {', '.join(known) or 'none'})")
    result = {}
    for field in fields:
        value = given.get(field.name, field.default)
        if value is None:
            if field.required:
                raise ValidationError(f"{where}.{field.name}", "is required")
            continue
        result[field.name] = field.coerce(where, value)
    return result


@dataclasses.dataclass(frozen=True)
class UsernameRules:
    pattern: str = r"^[a-z][a-z0-9]*$"
    max_length: int = 16
    min_length: int = 1
    generate_length: int = 8
    lowercase: bool = True
    forbidden_prefixes: tuple[str, ...] = ()
    forbidden_suffixes: tuple[str, ...] = ()
    reserved: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class PasswordRules:
    """``length`` and ``symbols`` shape the passwords provisiond generates; a password a billing
    system chose must be ``min_length`` to ``max_length`` characters of letters, digits and
    ``allowed_symbols`` (no quote, backslash, brace or space: panels driven by a shell or a
    template take it verbatim), with a lowercase letter, an uppercase letter and a digit."""
    length: int = 20
    symbols: str = "!#%+-=_"
    min_length: int = 10
    max_length: int = 128
    allowed_symbols: str = "!#$%&()*+,-./:;<=>?@[]^_~"


@dataclasses.dataclass(frozen=True)
class AdminAction:
    """An action beyond the lifecycle (a login link, a cache purge, ...) declared by a panel.

    It runs at once, for one service (``scope: service``; active, or suspended when an admin
    asks: see provisiond.actions) or one server
    (``scope: server``), for the audiences it names; its playbook is ``<name>.yml``.
    """
    name: str
    label: str
    scope: str = "service"
    audience: tuple[str, ...] = ("admin",)
    params: tuple[Field, ...] = ()

    def check_params(self, given: Mapping[str, Any]) -> dict:
        return check_fields("params", self.params, given, f"action {self.name} takes no such parameter")


@dataclasses.dataclass(frozen=True)
class Panel:
    id: str
    name: str
    path: Path
    connection: str
    default_port: int | None
    credentials: tuple[Field, ...]
    package_fields: tuple[Field, ...]
    actions: tuple[str, ...]
    username: UsernameRules
    password: PasswordRules
    final_backup: bool = False
    admin_actions: tuple[AdminAction, ...] = ()
    checkout: tuple[Field, ...] = ()  # what the client fills in at order time (provisiond.checkout)
    # What a server's key may run, for the steps' needs (stepneeds.py); not part of the identity.
    api_keys: dict = dataclasses.field(default_factory=dict, hash=False, compare=False)

    def admin_action(self, name: str) -> AdminAction:
        for action in self.admin_actions:
            if action.name == name:
                return action
        raise ValidationError("action", f"panel {self.id} has no action {name!r} "
                              f"(it declares: {', '.join(a.name for a in self.admin_actions) or 'none'})")

    def declares(self, name: str) -> bool:
        """Whether panel.yaml declares the admin action ``name`` (list_accounts, usage, ...)."""
        return any(action.name == name for action in self.admin_actions)

    def playbook_path(self, action: str) -> Path:
        return self.path / f"{action}.yml"

    def supports(self, action: str) -> bool:
        return action in self.actions

    def require(self, action: str) -> None:
        if not self.supports(action):
            raise PanelError(f"panel {self.id} does not support {action} "
                             f"(it declares: {', '.join(self.actions)})")

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.credentials if f.secret)

    def check_credentials(self, given: Mapping[str, Any], stored: Mapping[str, Any] | None = None) -> dict:
        """Validate credentials against the manifest; return the full set (defaults filled in).

        A blank or masked value for a secret field keeps the ``stored`` value, so an update
        that echoes a masked listing back never wipes a secret.
        """
        known = {f.name: f for f in self.credentials}
        for name in given:
            if name not in known:
                raise ValidationError(f"credential.{name}", f"panel {self.id} has no such field "
                                      f"(fields: {', '.join(known)})")
        result = {}
        for field in self.credentials:
            value = given.get(field.name)
            if field.secret and value in (None, "", MASK) and stored and stored.get(field.name):
                result[field.name] = stored[field.name]
                continue
            if value == MASK:
                raise ValidationError(f"credential.{field.name}", "is masked; give the real value")
            if value in (None, ""):
                value = (stored or {}).get(field.name, field.default)
            if value in (None, ""):
                if field.required:
                    raise ValidationError(f"credential.{field.name}", "is required")
                continue
            result[field.name] = field.coerce("credential", value)
        return result

    def check_package_config(self, given: Mapping[str, Any]) -> dict:
        return check_fields("config", self.package_fields, given, f"panel {self.id} has no such package field")


# -- loading ---------------------------------------------------------------------------------

SPEC_KINDS = (("label", (str,), "text"), ("required", (bool,), "true or false"),
              ("secret", (bool,), "true or false"), ("pattern", (str,), "a regular expression"),
              ("min", (int,), "a whole number"), ("max", (int,), "a whole number"),
              ("choices", (list, tuple), "a list"))


def _fields(where: str, raw: Any) -> tuple[Field, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise PanelError(f"{where}: expected a mapping of field name to its definition")
    fields = []
    allowed = {f.name for f in dataclasses.fields(Field)} - {"name"}
    for name, spec in raw.items():
        spec = spec or {}
        if not isinstance(spec, dict):
            raise PanelError(f"{where}.{name}: expected a mapping")
        unknown = set(spec) - allowed
        if unknown:
            raise PanelError(f"{where}.{name}: unknown key {sorted(unknown)[0]!r}")
        if not isinstance(spec.get("type", "str"), str) or spec.get("type", "str") not in FIELD_TYPES:
            raise PanelError(f"{where}.{name}.type: must be one of {', '.join(FIELD_TYPES)}")
        for key, kinds, what in SPEC_KINDS:
            if spec.get(key) is not None and (isinstance(spec[key], bool) and bool not in kinds
                                              or not isinstance(spec[key], kinds)):
                raise PanelError(f"{where}.{name}.{key}: must be {what}")
        if spec.get("pattern") is not None:
            try:
                re.compile(spec["pattern"])
            except (re.error, OverflowError) as exc:
                raise PanelError(f"{where}.{name}.pattern: not a valid regular expression ({exc})") from None
        spec = dict(spec, choices=tuple(spec.get("choices") or ()))
        fields.append(Field(name=str(name), **spec))
    return tuple(fields)


def checkout_fields(where: str, raw: Any) -> tuple[Field, ...]:
    """Checkout fields (panel.yaml's ``checkout:``, or a product's own): field definitions as
    ``credentials:`` has them, with a lowercase name that is not an order's own key (username,
    domain, ...), never secret (the value is shown with the service), and a default that passes
    the field's own checks."""
    fields = _fields(where, raw)
    for field in fields:
        if not CHECKOUT_NAME.match(field.name):
            raise PanelError(f"{where}.{field.name}: a checkout field's name is lowercase letters, digits "
                             "and _, starting with a letter")
        if field.name in ORDER_KEYS:
            raise PanelError(f"{where}.{field.name}: the order takes {field.name} itself; a checkout field "
                             "cannot be a second key for it")
        if field.secret:
            raise PanelError(f"{where}.{field.name}.secret: a checkout value is shown with its service; "
                             "it cannot be secret")
        for key, value in [("choices", c) for c in field.choices] + [("default", field.default)]:
            if value is None:
                continue
            if type(value) is not FIELD_TYPES[field.type]:  # 8.2 is not the text "8.2"
                raise PanelError(f"{where}.{field.name}.{key}: {value!r} is not of type {field.type}")
            try:
                field.coerce(where, value)
            except ValidationError as exc:
                raise PanelError(f"{where}.{field.name}.{key}: {exc.message}") from None
    return fields


def _rules(where: str, cls, raw: Any):
    raw = raw or {}
    if not isinstance(raw, dict):
        raise PanelError(f"{where}: expected a mapping")
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = set(raw) - allowed
    if unknown:
        raise PanelError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    values = dict(raw)
    for key in ("forbidden_prefixes", "forbidden_suffixes"):
        if key in values:
            values[key] = tuple(values[key])
    if "reserved" in values:
        values["reserved"] = frozenset(str(v).lower() for v in values["reserved"])
    if "pattern" in values:
        try:
            re.compile(values["pattern"])
        except (re.error, OverflowError) as exc:
            raise PanelError(f"{where}.pattern: not a valid regular expression ({exc})") from None
    return cls(**values)


ADMIN_ACTION_KEYS = {"label", "scope", "audience", "params"}


def _admin_actions(folder: Path, raw: Any, lifecycle: tuple[str, ...]) -> tuple[AdminAction, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise PanelError("admin_actions: expected a mapping of action name to its definition")
    found = []
    for name, spec in raw.items():
        where = f"admin_actions.{name}"
        spec = spec or {}
        if not isinstance(spec, dict) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", str(name)):
            raise PanelError(f"{where}: expected a lowercase name and a mapping")
        if name in lifecycle or name in LIFECYCLE_ACTIONS or name in OPTIONAL_ACTIONS:
            raise PanelError(f"{where}: a lifecycle action cannot also be an admin action")
        unknown = set(spec) - ADMIN_ACTION_KEYS
        if unknown:
            raise PanelError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        if spec.get("scope", "service") not in ("service", "server"):
            raise PanelError(f"{where}.scope: must be service or server")
        audience = tuple(spec.get("audience") or ("admin",))
        if not set(audience) <= {"admin", "client"}:
            raise PanelError(f"{where}.audience: must list admin and/or client")
        if not (folder / f"{name}.yml").is_file():
            raise PanelError(f"{where}: {name}.yml is missing")
        found.append(AdminAction(name=str(name), label=str(spec.get("label", name)),
                                 scope=spec.get("scope", "service"), audience=audience,
                                 params=_fields(f"{where}.params", spec.get("params"))))
    return tuple(found)


def load_panel(folder: Path) -> Panel:
    """Read and validate one panel folder; PanelError names the file and field."""
    manifest = folder / "panel.yaml"
    try:
        raw = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PanelError(f"{manifest}: cannot be read as YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise PanelError(f"{manifest}: expected a mapping at the top")
    unknown = set(raw) - MANIFEST_KEYS
    if unknown:
        raise PanelError(f"{manifest}: {sorted(unknown)[0]}: unknown key "
                         f"(known: {', '.join(sorted(MANIFEST_KEYS))})")
    try:
        panel_id = raw.get("id", folder.name)
        if panel_id != folder.name:
            raise PanelError(f"id: {panel_id!r} must equal the folder name {folder.name!r}")
        if not PANEL_ID.match(str(panel_id)):
            raise PanelError(f"id: {panel_id!r} must be lowercase letters, digits, - or _")
        if raw.get("connection", "local") not in ("local", "ssh"):
            raise PanelError("connection: must be local or ssh")
        actions = tuple(raw.get("actions") or ())
        if not actions:
            raise PanelError("actions: must list at least one action")
        for action in actions:
            if not (folder / f"{action}.yml").is_file():
                raise PanelError(f"actions: {action} is declared but {action}.yml is missing")
        return Panel(
            id=panel_id,
            name=str(raw.get("name", panel_id)),
            path=folder,
            connection=raw.get("connection", "local"),
            default_port=raw.get("default_port"),
            credentials=_fields("credentials", raw.get("credentials")),
            package_fields=_fields("package", raw.get("package")),
            actions=actions,
            username=_rules("username", UsernameRules, raw.get("username")),
            password=_rules("password", PasswordRules, raw.get("password")),
            final_backup=bool(raw.get("final_backup", False)),
            admin_actions=_admin_actions(folder, raw.get("admin_actions"), actions),
            checkout=checkout_fields("checkout", raw.get("checkout")),
            api_keys=dict(raw.get("api_keys") or {}),
        )
    except (PanelError, TypeError) as exc:
        raise PanelError(f"{manifest}: {exc}") from None


@dataclasses.dataclass
class Registry:
    panels: dict[str, Panel]
    problems: dict[str, str]  # panel folder → what is wrong with it

    def get(self, panel_id: str) -> Panel:
        if panel_id in self.panels:
            return self.panels[panel_id]
        if panel_id in self.problems:
            raise PanelError(f"panel {panel_id} is broken: {self.problems[panel_id]}")
        raise ValidationError("panel", f"unknown panel {panel_id!r} "
                              f"(known: {', '.join(sorted(self.panels)) or 'none'})")


_loaded: dict[Path, tuple[tuple, Panel]] = {}


def _load_unless_unchanged(folder: Path) -> Panel:
    """``load_panel``, or the Panel it made last time when neither ``panel.yaml`` nor the names in
    the folder have changed since: the daemon discovers the panels at every tick."""
    try:
        manifest = os.stat(folder / "panel.yaml")
        key = (manifest.st_mtime_ns, manifest.st_ctime_ns, manifest.st_size, manifest.st_ino,
               frozenset(os.listdir(folder)))
    except OSError:
        return load_panel(folder)   # which says what is wrong
    known = _loaded.get(folder)
    if known is not None and known[0] == key:
        return known[1]
    panel = load_panel(folder)
    _loaded[folder] = (key, panel)
    return panel


def discover(dirs: Iterable[Path]) -> Registry:
    panels: dict[str, Panel] = {}
    problems: dict[str, str] = {}
    for base in dirs:
        if not Path(base).is_dir():
            continue
        for folder in sorted(Path(base).iterdir()):
            if folder.name in panels or folder.name in problems:
                continue
            if not (folder / "panel.yaml").is_file():
                continue
            try:
                panels[folder.name] = _load_unless_unchanged(folder)
            except PanelError as exc:
                problems[folder.name] = str(exc)
    return Registry(panels, problems)
