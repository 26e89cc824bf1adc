"""Runs never outlive the process that started them, and leave no secrets behind.

A run's private data dir (inventory, the 0600 secrets vars file, an SSH key) lives in
``<home>/runs/`` (0700), never in ``$TMPDIR``, and is named after its owner: the process that
started the run, as ``<host>.<pid>.<start time>`` (the start time tells a reused pid from the
owner). Every process of the run carries the owner in its run marker (``RUN_MARKER``).

Two layers make sure a killed daemon leaves nothing behind:

- A watchdog. The first run of a process starts ``python -m provisiond.orphans OWNER``, a child
  in a session of its own that reads a pipe: the run dirs in use, one line each. However the
  process ends (SIGKILL included), the kernel closes the pipe; the watchdog then SIGKILLs every
  process whose marker names its owner and removes the run dirs left. So an unfenced
  ansible-playbook dies moments after its daemon, long before the job's lease runs out and the
  reaper hands the job to another worker.
- Start-up clean-up (``reap``). When the watchdog died too (a reboot, a kill of the whole
  process tree), a starting daemon kills the run processes of owners that are gone and removes
  their run dirs, before it claims or reaps anything.

Only the standard library is imported here: the watchdog starts fast and small.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Callable, Iterator

RUN_MARKER = "PROVISIOND_RUN"   # set in every process of a run: "<ident>:<owner>:<uuid>"
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]

_lock = threading.Lock()
_watchdog: subprocess.Popen | None = None
_watchdog_parent = 0
_watched: set[str] = set()


# -- owners --------------------------------------------------------------------------------

def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot); None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except FileNotFoundError:
        return None
    except (OSError, IndexError):
        return "unknown"  # there, but unreadable: never taken for gone


def owner() -> str:
    """This process as a run owner: ``<host>.<pid>.<start time>``."""
    return f"{HOST}.{os.getpid()}.{_start_time(os.getpid())}"


def gone(tag: str | None) -> bool:
    """True for an owner of this host whose process no longer runs (a reused pid included).

    An owner of another host, or a tag that does not parse, is never taken for gone.
    """
    host, pid, start = (tag or "").split(".", 2) if (tag or "").count(".") == 2 else ("", "", "")
    if host != HOST or not pid.isdigit():
        return False
    return _start_time(int(pid)) != start


def new_marker(ident: str) -> str:
    return f"{ident}:{owner()}:{uuid.uuid4().hex}"


def marker_owner(marker: str) -> str | None:
    parts = marker.rsplit(":", 2)
    return parts[1] if len(parts) == 3 else None


def new_run_dir(runs_dir: Path) -> Path:
    """A fresh 0700 run dir in ``runs_dir`` (itself made or tightened to 0700), named by owner."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(runs_dir, 0o700)
    return Path(tempfile.mkdtemp(prefix=f"{owner()}-", dir=runs_dir))


# -- run processes ---------------------------------------------------------------------------

def run_processes() -> Iterator[tuple[int, str]]:
    """(pid, marker) of every live process of a run that this user can see."""
    needle = f"{RUN_MARKER}=".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(needle):
                yield int(entry.name), item[len(needle):].decode(errors="replace")
                break


def kill_runs(wanted: Callable[[str], bool]) -> list[int]:
    """SIGKILL every run process whose marker is ``wanted``; returns their pids.

    Goes round again while it finds new ones: a dying run may still have been forking.
    """
    killed: list[int] = []
    for _ in range(5):
        found = [pid for pid, marker in run_processes() if wanted(marker) and pid not in killed]
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                continue
    return killed


def reap(runs_dir: Path) -> tuple[list[int], list[Path]]:
    """Kill the runs and remove the run dirs of owners that are gone (a daemon's start-up)."""
    killed = kill_runs(lambda marker: gone(marker_owner(marker)))
    removed = []
    if Path(runs_dir).is_dir():
        for entry in Path(runs_dir).iterdir():
            if entry.is_dir() and gone(entry.name.rsplit("-", 1)[0]):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return killed, removed


# -- the watchdog ----------------------------------------------------------------------------

def watch(*paths: Path) -> None:
    """Tell this process's watchdog that ``paths`` are in use by a run (removed if we die)."""
    _tell("+", paths)


def unwatch(*paths: Path) -> None:
    _tell("-", paths)


def _tell(sign: str, paths) -> None:
    with _lock:
        for path in paths:
            (_watched.add if sign == "+" else _watched.discard)(str(path))
        lines = "".join(f"{sign}{path}\n" for path in paths)
        try:
            try:
                _pipe().write(lines)
                _pipe().flush()
            except OSError:  # the watchdog died: a new one is told every dir still in use
                _restart()
        except OSError:
            pass  # no watchdog (cannot fork): the run goes on; a daemon's start-up still cleans up


def _pipe():
    if _watchdog is None or _watchdog_parent != os.getpid() or _watchdog.poll() is not None:
        _restart()
    return _watchdog.stdin


def _restart() -> None:
    global _watchdog, _watchdog_parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    # Popen's end of the pipe is close-on-exec: no run inherits it, so only our death closes it.
    _watchdog = subprocess.Popen([sys.executable, "-m", "provisiond.orphans", owner()],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=env, text=True, start_new_session=True)
    _watchdog_parent = os.getpid()
    _watchdog.stdin.write("".join(f"+{path}\n" for path in _watched))
    _watchdog.stdin.flush()


def _watch_parent(owner_tag: str) -> None:
    """The watchdog: wait for the parent's pipe to close, then end its runs and remove their dirs."""
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)  # it ends when its parent does, not before
    in_use: set[str] = set()
    for line in sys.stdin:
        path = line.rstrip("\n")
        (in_use.add if path.startswith("+") else in_use.discard)(path[1:])
    kill_runs(lambda marker: marker_owner(marker) == owner_tag)
    for path in in_use:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    _watch_parent(sys.argv[1])
