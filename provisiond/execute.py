"""The front door to ansible-runner: the only module that imports it.

``run(spec)`` runs one rendered playbook over one inventory (one host per job) in a fresh
private_data_dir (0700, in the home's ``runs/``), with a timeout and a cancel check, and returns a plain ``RunResult``
with each host's outcome. It touches no database.

Secrets never reach the runner's files in clear: they travel in a 0600 vars file passed as
``-e @file`` (ansible-runner writes ``env/extravars`` and the command's environment into
artifacts), every ``PROVISIOND_*`` variable is blanked in the child's environment, and the
private_data_dir is removed when the run ends. The events and stdout handed back are redacted.
Service data, credentials and secrets are written as Ansible's unsafe strings (``Data``): Ansible
never renders a ``{{ }}`` inside them, and "8.3" or "no" reach tasks as that text.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import ansible_runner

from provisiond import orphans
from provisiond.config import bundled_dir, default_home
from provisiond.crypto import Redactor
from provisiond.orphans import RUN_MARKER  # noqa: F401 - set in every process of a run

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
HOST_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped")
# The play render.py adds for a product's extra steps: only its roles are steps (one log row
# each); a role a panel's own playbook includes is part of the action.
STEPS_PLAY_NAME = "Run the product's extra steps"
# ansible-runner empties a task result whose text is longer than MAX_EVENT_RES (700,000 by
# default), message and transient flag included. panel_call reads at most 1 MiB of an answer
# (its text can be ~1.5x that as a Python repr) and keeps only an excerpt when a call fails, so
# 4 MiB keeps every panel_call result whole.
MAX_EVENT_RES = 4 * 1024 * 1024
STRATEGY_PLUGINS = Path(__file__).resolve().parent / "ansible_plugins" / "strategy"


@dataclasses.dataclass
class RunSpec:
    playbook: str                      # rendered playbook text
    inventory: dict                    # YAML inventory: all.vars and all.hosts
    secrets: dict                      # extra vars that are secret (0600 file, -e @file)
    redactor: Redactor
    timeout: float
    ident: str = "run"
    forks: int = 2
    verbosity: int = 0
    cancelled: Callable[[], bool] = lambda: False
    env: dict = dataclasses.field(default_factory=dict)
    private_files: dict = dataclasses.field(default_factory=dict)  # name → text, 0600 in private/
    strategy: str = "provisiond_linear"  # waits for a free fork (ansible_plugins); "linear": Ansible's
    poll_interval: float = 0.1          # Ansible's internal_poll_interval (settings: ansible_poll_interval)
    runs_dir: Path | None = None       # where the run's private data dir is made (the home's runs/)


@dataclasses.dataclass
class HostResult:
    host: str
    ok: bool
    failed_task: str | None = None
    message: str | None = None
    panel_answer: Any = None
    transient: bool | None = None   # what the failing task said (panel_call does); None: unknown
    unreachable: bool = False
    stats: dict = dataclasses.field(default_factory=dict)   # what the playbook reported (set_stats)
    steps: dict = dataclasses.field(default_factory=dict)   # extra step (role) → None when ok, else why
    events: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class RunResult:
    status: str            # successful, failed, timeout, canceled, error
    rc: int | None
    started: float
    duration: float
    stdout: str
    hosts: dict[str, HostResult]
    error: str | None = None

    def host(self, name: str) -> HostResult:
        """The outcome for one host; a host the run never finished fails with the run's reason."""
        result = self.hosts.get(name) or HostResult(name, ok=False)
        if not result.ok and not result.message:
            result.message = self.reason()
            if self.status == "timeout":
                result.transient = True
        return result

    def reason(self) -> str:
        return {"timeout": f"the run timed out after {self.duration:.0f} s",
                "canceled": "the run was cancelled"}.get(
            self.status, self.error or f"the run ended ({self.status}, rc {self.rc}) before this host finished")


class Data(str):
    """Text that is data, never a template: service data, credentials, secrets.

    Ansible renders any ``{{ }}`` or ``{% %}`` it finds in a variable's value, even one from an
    inventory or an extra-vars file: a domain, a suspend reason or an API token holding a lookup
    would run code in the controller. Written to the run's files as an unsafe string
    (``{"__ansible_unsafe": ...}``), such a string reaches tasks as the literal text it is.
    """


def as_data(value: Any) -> Any:
    """``value`` with every string in it (nested dicts and lists too) marked as ``Data``."""
    if isinstance(value, str):
        return Data(value)
    if isinstance(value, dict):
        return {key: as_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_data(item) for item in value]
    return value


def _marked(value: Any) -> Any:
    """``value`` with each ``Data`` string written as Ansible's JSON form of an unsafe string."""
    if isinstance(value, Data):
        return {UNSAFE: str(value)}
    if isinstance(value, dict):
        return {key: _marked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_marked(item) for item in value]
    return value


# JSON, which Ansible's loader reads before trying YAML. Not YAML's ``!unsafe``: ansible-core
# 2.19 resolves a tagged scalar again as if it were plain, even when quoted (ansible/_internal/
# _yaml/_constructor.py, _resolve_and_construct_object), so `!unsafe '8.3'` reached tasks as the
# float 8.3, `!unsafe 'no'` as False. {"__ansible_unsafe": "8.3"} stays the text "8.3".
UNSAFE = "__ansible_unsafe"


def inventory_text(spec: RunSpec) -> str:
    """The inventory file of a run; the strings the renderer marked as data are unsafe."""
    return json.dumps(_marked(spec.inventory), ensure_ascii=False, indent=1)


def secrets_text(spec: RunSpec) -> str:
    """The secrets vars file of a run: every string in it is data (unsafe)."""
    return json.dumps(_marked(as_data(spec.secrets)), ensure_ascii=False, indent=1)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def ansible_bin_dir() -> Path | None:
    """The folder of the ``ansible-playbook`` installed with the running interpreter.

    Under systemd (or ``env -i``) the virtualenv's ``bin`` is not on ``PATH``: the executables
    sit beside ``sys.executable`` (not resolved: a venv's python is a symlink out of it) or in
    the interpreter's scripts folder.
    """
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        if (folder / "ansible-playbook").is_file():
            return folder
    return None


def _search_path(commands: Path) -> str:
    """The child's PATH: the run's own commands, Ansible's folder, then this process's PATH (or
    the system's)."""
    path = os.environ.get("PATH") or SYSTEM_PATH
    folder = ansible_bin_dir()
    return os.pathsep.join([str(commands), *([str(folder)] if folder else []), path])


def _write_commands(folder: Path) -> None:
    """The run's ``ansible-playbook``: Ansible's, started through ``provisiond.ansible_plugins.playbook``
    by this very interpreter (``-P``: the run's folder is not put on its import path)."""
    folder.mkdir(mode=0o700)
    command = folder / "ansible-playbook"
    command.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -P -m provisiond.ansible_plugins.playbook "$@"\n',
                       encoding="utf-8")
    command.chmod(0o700)


def _runs_dir(spec: RunSpec) -> Path:
    return Path(spec.runs_dir or default_home() / "runs")


def _environment(spec: RunSpec, data_dir: Path, control_dir: Path, marker: str) -> dict:
    env = {name: "" for name in os.environ if name.startswith("PROVISIOND_")}
    env.update({
        "PATH": _search_path(data_dir / "bin"),
        RUN_MARKER: marker,
        "ANSIBLE_ACTION_PLUGINS": str(bundled_dir("roles") / "panel_call" / "action_plugins"),
        "ANSIBLE_ROLES_PATH": str(bundled_dir("roles")),
        "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "False",
        # ansible-runner turns host key checking off unless told; SSH panels pin their keys.
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        "ANSIBLE_PIPELINING": "True",
        # Colours make a run's output readable in the console (each event's stdout keeps
        # them); the run's whole stdout is read back plain (``_read_stdout``).
        "ANSIBLE_FORCE_COLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(data_dir / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(data_dir / "remote-tmp"),
        "ANSIBLE_HOME": str(data_dir / "ansible"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        # A run's inventories are YAML files (defaults.yml and the rendered hosts.yml). Ansible's
        # default list puts ``auto`` before ``yaml``: it parses each file only to find it names
        # no plugin, and ``yaml`` then parses it again (a sixth of a run's start-up at 160 hosts).
        "ANSIBLE_INVENTORY_ENABLED": "yaml",
        "MAX_EVENT_RES": str(MAX_EVENT_RES),
        "ANSIBLE_CONFIG": str(data_dir / "ansible.cfg"),
        "ANSIBLE_STRATEGY_PLUGINS": str(STRATEGY_PLUGINS),
        "ANSIBLE_STRATEGY": spec.strategy,
        # Where the run's ansible-playbook keeps Ansible's parsed routing metadata (playbook.py):
        # the home's cache/, beside its runs/.
        "PROVISIOND_ANSIBLE_CACHE": str(_runs_dir(spec).parent / "cache"),
    })
    env.update(spec.env)
    return env


def run(spec: RunSpec) -> RunResult:
    """Run one playbook; always returns, and always removes its private_data_dir.

    The private_data_dir is made in ``spec.runs_dir`` (0700), not in ``$TMPDIR``; the run's
    processes and files never outlive this process (``orphans``).
    """
    data_dir = orphans.new_run_dir(_runs_dir(spec))
    # SSH's control sockets hold no secret, and their path must stay short (sun_path: 107 bytes).
    control_dir = Path(tempfile.mkdtemp(prefix="pvd-"))
    orphans.watch(data_dir, control_dir)
    marker = orphans.new_marker(spec.ident)
    events: list[dict] = []
    lock = threading.Lock()

    def keep_event(event: dict) -> bool:
        with lock:
            events.append(event)
        return False  # nothing is written to the artifacts dir; the caller keeps a redacted copy

    started = time.time()
    try:
        _write_commands(data_dir / "bin")
        (data_dir / "project").mkdir()
        (data_dir / "inventory").mkdir()
        (data_dir / "project" / "main.yml").write_text(spec.playbook, encoding="utf-8")
        (data_dir / "inventory" / "hosts.yml").write_text(inventory_text(spec), encoding="utf-8")
        # internal_poll_interval has no environment variable: only a config file sets it.
        (data_dir / "ansible.cfg").write_text(f"[defaults]\ninternal_poll_interval = {spec.poll_interval}\n")
        secrets_file = data_dir / "secrets.yml"
        _write_private(secrets_file, secrets_text(spec))
        (data_dir / "private").mkdir(mode=0o700)
        for name, text in spec.private_files.items():
            _write_private(data_dir / "private" / name, text)
        runner = ansible_runner.run(
            private_data_dir=str(data_dir), playbook="main.yml", ident=spec.ident,
            inventory=[str(bundled_dir("inventories") / "defaults.yml"), str(data_dir / "inventory" / "hosts.yml")],
            cmdline=f"-e @{secrets_file}", forks=spec.forks, verbosity=spec.verbosity or None,
            timeout=max(1, int(spec.timeout)), cancel_callback=spec.cancelled,
            event_handler=keep_event, envvars=_environment(spec, data_dir, control_dir, marker),
            suppress_env_files=True, quiet=True,
            settings={"pexpect_timeout": 0.5, "suppress_ansible_output": True})
        stdout = _read_stdout(runner)
        status, rc, error = runner.status, runner.rc, None
    except BaseException as exc:  # ansible-runner raises SystemExit on some setup errors
        if isinstance(exc, KeyboardInterrupt):
            raise
        stdout, status, rc, error = "", "error", None, f"ansible-runner could not run: {exc}"
    finally:
        kill_leftovers(marker)
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(control_dir, ignore_errors=True)
        orphans.unwatch(data_dir, control_dir)
    duration = time.time() - started
    redact = spec.redactor
    clean_events = [_plain_if_hiding(redact.data(e), redact) for e in events]
    return RunResult(status=status, rc=rc, started=started, duration=duration,
                     stdout=redact.text(stdout) or "", hosts=_hosts(clean_events, spec.inventory),
                     error=redact.text(error))


def kill_leftovers(marker: str) -> list[int]:
    """SIGKILL every process still carrying this run's marker in its environment.

    ansible-runner kills the playbook's process group on timeout or cancel, but Ansible starts
    module processes in sessions of their own, out of that group; they all inherit the marker.
    """
    return orphans.kill_runs(lambda found: found == marker)


def _plain_if_hiding(event: dict, redact: Redactor) -> dict:
    """The event with its stdout made plain when a colour code splits a secret there.

    Ansible colours whole lines, so a secret inside one stays whole and ``redact`` masks it;
    should a code ever fall inside one, the plain text shows it and is kept, masked, instead.
    """
    stdout = event.get("stdout")
    if isinstance(stdout, str) and "\x1b" in stdout:
        plain = ANSI.sub("", stdout)
        masked = redact.text(plain)
        if masked != plain:
            event = {**event, "stdout": masked}
    return event


def _read_stdout(runner) -> str:
    try:
        return ANSI.sub("", runner.stdout.read())
    except (OSError, AttributeError, ValueError):
        return ""


def _hosts(events: list[dict], inventory: dict) -> dict[str, HostResult]:
    """Per-host outcomes from the event stream; the final stats decide ok or failed."""
    results = {name: HostResult(name, ok=False) for name in inventory.get("all", {}).get("hosts", {})}
    final_stats = None
    for event in events:
        data = event.get("event_data") or {}
        host = data.get("host")
        if event.get("event") == "playbook_on_stats":
            final_stats = data
        if event.get("event") not in HOST_EVENTS or host not in results:
            continue
        result = results[host]
        result.events.append(event)
        res = data.get("res") or {}
        if isinstance(res.get("ansible_stats"), dict):
            result.stats.update(res["ansible_stats"].get("data") or {})
        failure = event["event"] in ("runner_on_failed", "runner_on_unreachable")
        role = data.get("role")
        if (role and data.get("play") == STEPS_PLAY_NAME and event["event"] != "runner_on_skipped"
                and not data.get("ignore_errors")):
            if failure:
                result.steps[role] = result.steps.get(role) or f"{data.get('task')}: {_message(res)}"
            else:
                result.steps.setdefault(role, None)
        # The first failure is the cause; a rescue that fails again only repeats it.
        if failure and not data.get("ignore_errors") and result.failed_task is None:
            # A panel_call ``refuse`` check that refused is the failing step, named as itself.
            result.failed_task = res.get("check") if isinstance(res.get("check"), str) else data.get("task")
            result.message = _message(res)
            result.panel_answer = res.get("answer")
            result.transient = res.get("transient") if isinstance(res.get("transient"), bool) else None
            result.unreachable = event["event"] == "runner_on_unreachable"
    if final_stats:
        bad = set(final_stats.get("failures") or {}) | set(final_stats.get("dark") or {})
        seen = set(final_stats.get("processed") or {})
        for name, result in results.items():
            result.ok = name in seen and name not in bad
    return results


def _message(res: dict) -> str:
    message = res.get("msg") or res.get("stderr") or res.get("reason") or ""
    if not message and res.get("censored"):
        message = "the failing task hides its output (no_log)"
    return str(message).strip()[:2000]
