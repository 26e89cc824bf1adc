"""Which variables a playbook reads, checked against the contract (provisiond/contract.py).

The YAML is composed (not constructed) so every string keeps its line; each templated string and
each bare condition (``when``, ``that``, ...) is parsed by Jinja2. Top-level names come from
``jinja2.meta.find_undeclared_variables``; attribute reads are checked on ``account``,
``panel``, ``panel_secrets`` and ``account_secrets[inventory_hostname]``. Names the playbook
declares itself (``vars:``, ``register:``, ``set_fact:``, ``loop_var``) count as declared.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Iterator

import jinja2
import yaml
from jinja2 import meta, nodes

from provisiond import contract



class _AnyName(dict):
    """Filters and tests are Ansible's business: any name passes the variable analysis."""

    def __contains__(self, name) -> bool:
        return True

    def get(self, name, default=None):
        return super().get(name, len)  # any callable: only the names read matter here


_JINJA = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
_JINJA.filters = _AnyName(_JINJA.filters)
_JINJA.tests = _AnyName(_JINJA.tests)
# Keys whose value Ansible evaluates as a bare expression, without {{ }}.
_CONDITIONS = {"when", "failed_when", "changed_when", "until", "that"}
_SET_FACT = {"set_fact", "ansible.builtin.set_fact", "ansible.legacy.set_fact"}
_SET_STATS = {"set_stats", "ansible.builtin.set_stats", "ansible.legacy.set_stats"}
_PANEL_CALL = {"panel_call"}  # its ``report`` is a set_stats of its own (roles/panel_call)


@dataclasses.dataclass(frozen=True)
class Allowed:
    """What one panel's playbooks may read: the contract plus the panel's credential fields."""
    panel: frozenset[str]
    panel_secrets: frozenset[str]


def allowed_for(public_fields, secret_fields) -> Allowed:
    return Allowed(frozenset(contract.PANEL) | frozenset(public_fields), frozenset(secret_fields))


@dataclasses.dataclass
class _Text:
    value: str
    node: yaml.ScalarNode


def problems(files: list[tuple[str, str]], allowed: Allowed) -> list[str]:
    """``file:line: problem`` for every undocumented read in ``files`` ((shown name, text) pairs),
    which are checked together: a role may read what the playbook registered."""
    trees = []
    for name, text in files:
        try:
            trees.append((name, yaml.compose(text, Loader=yaml.SafeLoader)))
        except yaml.YAMLError as exc:
            return [f"{name}: not YAML: {exc}"]
    declared: set[str] = set()
    for name, tree in trees:
        declared |= _declared(tree)
        if Path(name).parent.name in ("vars", "defaults"):  # a role's variables file
            declared |= {k for k, _ in _pairs(tree)}
    found = []
    for name, tree in trees:
        lines = dict(files)[name].splitlines()
        for text in _texts(tree, None):
            for line, problem in _check_text(text, declared, allowed, lines):
                found.append(f"{name}:{line}: {problem}")
        found += [f"{name}:{line}: {problem}" for line, problem in _check_stats(tree)]
    return found


# -- walking the YAML -------------------------------------------------------------------------

def _pairs(node) -> Iterator[tuple[str, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                yield key.value, value


def _children(node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def _declared(node) -> set[str]:
    names: set[str] = set()
    for key, value in _pairs(node):
        if key in ("vars", "defaults") or key in _SET_FACT:
            names |= {k for k, _ in _pairs(value)}
        elif key in ("register", "loop_var", "index_var") and isinstance(value, yaml.ScalarNode):
            names.add(value.value)
    for child in _children(node):
        names |= _declared(child)
    return names


def _line(node: yaml.ScalarNode, needle: str, lines: list[str]) -> int:
    """The line of ``needle`` within the scalar's span (a folded string loses its own lines)."""
    for number in range(node.start_mark.line, min(node.end_mark.line + 1, len(lines))):
        if needle in lines[number]:
            return number + 1
    return node.start_mark.line + 1


def _texts(node, key: str | None) -> Iterator[_Text]:
    if isinstance(node, yaml.ScalarNode):
        if key in _CONDITIONS and node.tag != "tag:yaml.org,2002:bool" and "{{" not in node.value:
            yield _Text("{{ " + node.value + " }}", node)
        elif "{{" in node.value or "{%" in node.value:
            yield _Text(node.value, node)
        return
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            yield from _texts(child, key)
        return
    for child_key, value in _pairs(node):
        yield from _texts(value, child_key)


# -- checking one template --------------------------------------------------------------------

def _check_text(text: _Text, declared: set[str], allowed: Allowed,
                lines: list[str]) -> Iterator[tuple[int, str]]:
    node = text.node
    try:
        tree = _JINJA.parse(text.value)
    except jinja2.TemplateSyntaxError as exc:
        yield node.start_mark.line + 1, f"template error: {exc.message}"
        return
    for name in sorted(meta.find_undeclared_variables(tree)):
        if name in contract.RUN or name in declared or contract.is_magic(name):
            continue
        yield _line(node, name, lines), _unknown(name, [*contract.RUN, *declared])
    for read in tree.find_all((nodes.Getattr, nodes.Getitem)):
        where = _read(read)
        if where is None:
            continue
        root, attribute = where
        known = {"account": contract.ACCOUNT, "panel": allowed.panel, "panel_secrets": allowed.panel_secrets,
                 "account_secrets[inventory_hostname]": contract.ACCOUNT_SECRETS}[root]
        if attribute not in known:
            yield _line(node, attribute, lines), _unknown(f"{root}.{attribute}",
                                                         [f"{root}.{k}" for k in known])


def _read(node) -> tuple[str, str] | None:
    """(root, attribute) of ``account.x`` / ``account['x']`` and the like; None for other reads."""
    if isinstance(node, nodes.Getattr):
        attribute, target = node.attr, node.node
    elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        attribute, target = node.arg.value, node.node
    else:
        return None
    if isinstance(target, nodes.Name) and target.name in ("account", "panel", "panel_secrets"):
        return target.name, attribute
    if (isinstance(target, nodes.Getitem) and isinstance(target.node, nodes.Name)
            and target.node.name == "account_secrets" and isinstance(target.arg, nodes.Name)
            and target.arg.name == "inventory_hostname"):
        return "account_secrets[inventory_hostname]", attribute
    return None


def _unknown(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{name} is not a documented variable{hint}"


def _check_stats(node) -> Iterator[tuple[int, str]]:
    """set_stats (and panel_call's ``report``) may report only what the contract lists (contract.STATS)."""
    for key, value in _pairs(node):
        if key in _SET_STATS or key in _PANEL_CALL:
            what = "set_stats" if key in _SET_STATS else "panel_call report"
            for data_key, data in _pairs(value):
                if data_key != ("data" if key in _SET_STATS else "report"):
                    continue
                for reported, where in data.value if isinstance(data, yaml.MappingNode) else ():
                    if reported.value not in contract.STATS:
                        yield reported.start_mark.line + 1, _unknown(
                            f"{what} {reported.value}", [f"{what} {k}" for k in contract.STATS]
                        ).replace("variable", "report")
    for child in _children(node):
        yield from _check_stats(child)


def role_files(panel_path: Path) -> list[Path]:
    """The YAML of the roles a panel folder carries (``roles/*/{tasks,handlers,vars,defaults}``)."""
    roles = panel_path / "roles"
    if not roles.is_dir():
        return []
    return sorted(p for p in roles.glob("*/*/*.y*ml")
                  if p.parent.name in ("tasks", "handlers", "vars", "defaults"))
