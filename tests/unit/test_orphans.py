"""Who owns a run, and what a starting daemon may clean up: only what belongs to owners that
are gone (a reused pid is not its owner; another machine's owners are never judged)."""

from __future__ import annotations

import os
import subprocess

import pytest

from provisiond import orphans


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("tag, is_gone", [
    (lambda: orphans.owner(), False),                                   # this process
    (lambda: f"{orphans.HOST}.{dead_pid()}.123", True),                  # exited
    (lambda: f"{orphans.HOST}.{os.getpid()}.1", True),                   # its pid, reused by another
    (lambda: f"{'0' * 8 if orphans.HOST != '0' * 8 else '1' * 8}.{dead_pid()}.1", False),  # another host
    (lambda: None, False), (lambda: "not-a-tag", False), (lambda: "a.b.c", False),
])
def test_an_owner_is_gone_only_when_its_process_is(tag, is_gone):
    assert orphans.gone(tag()) is is_gone


def test_reap_ends_and_removes_only_what_gone_owners_left(tmp_path):
    runs = tmp_path / "runs"
    mine = orphans.new_run_dir(runs)
    dead = f"{orphans.HOST}.{dead_pid()}.123"
    (runs / f"{dead}-abc123").mkdir()
    (runs / f"{dead}-abc123" / "secrets.yml").write_text("secret")
    elsewhere = runs / "00000000.1.1-abc123"
    elsewhere.mkdir()

    def run(owner: str) -> subprocess.Popen:
        env = dict(os.environ, **{orphans.RUN_MARKER: f"20260101-srv-create-1-abc:{owner}:0123"})
        return subprocess.Popen(["sleep", "60"], env=env)

    orphan, live = run(dead), run(orphans.owner())
    try:
        killed, removed = orphans.reap(runs)
        assert orphan.wait(10) == -9 and killed == [orphan.pid]
        assert live.poll() is None
        assert removed == [runs / f"{dead}-abc123"]
        assert sorted(runs.iterdir()) == sorted([mine, elsewhere])
        assert oct(runs.stat().st_mode & 0o777) == oct(mine.stat().st_mode & 0o777) == "0o700"
    finally:
        for proc in (orphan, live):
            proc.kill()
            proc.wait()
