"""What the benchmarks share: a throwaway home and database, WHM simulators, a real daemon
process, and readings of CPU time and memory from /proc.

Not part of the test run. Every figure is measured on this machine in the same run as its
baseline, so ratios mean something even on a noisy machine.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import peewee as pw  # noqa: E402

from provisiond import catalog, config, crypto, db, lifecycle, panels  # noqa: E402
from provisiond.models import Job, database  # noqa: E402
from provisiond.sandbox.cpanel import WhmSimulator  # noqa: E402

TOKEN = "bench-whm-token-5Jk2Qw9Zx"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CLK_TCK = os.sysconf("SC_CLK_TCK")
DONE = ("succeeded", "failed", "cancelled", "needs_attention")


# -- machine ----------------------------------------------------------------------------------

def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict:
    model = "?"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_kb = int(handle.readline().split()[1])
    versions = {}
    for name in ("ansible-core", "ansible-runner", "peewee", "APScheduler"):
        try:
            from importlib.metadata import version
            versions[name] = version(name)
        except Exception:  # noqa: BLE001
            versions[name] = "?"
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(mem_kb / 1024 / 1024, 1),
            "python": sys.version.split()[0], **versions, "load": load_average(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def print_machine() -> None:
    m = machine()
    print(f"# {m['date']}  nproc={m['nproc']} cpu={m['cpu']!r} ram={m['ram_gib']} GiB  "
          f"python {m['python']}, ansible-core {m['ansible-core']}, ansible-runner {m['ansible-runner']}  "
          f"load average {m['load']}")


def wait_for_quiet(max_load: float, max_wait: float) -> None:
    """Wait (up to max_wait s) until the 1-minute load average drops below max_load."""
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] > max_load and time.monotonic() < deadline:
        time.sleep(5)


# -- /proc readings -----------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and of all its children it has waited for (cutime, cstime)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / CLK_TCK


def own_cpu_seconds(pid: int) -> float:
    """utime + stime of the process alone (its own threads, not its children)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """Every live descendant of pid (from /proc/*/stat parent links)."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pss_kib(pid: int) -> int:
    """Proportional set size of a process (shared pages divided among their sharers)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


class _Sampler:
    """Calls ``sample()`` every ``interval`` seconds on a thread, while in its ``with`` block."""

    def __init__(self, pid: int, interval: float):
        self.pid, self.interval = pid, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _loop(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class PssSampler(_Sampler):
    """Samples the PSS of a process tree (the daemon, its runs and their forks) every
    ``interval`` seconds; keeps the peak of the sum and the most processes seen at once."""

    def __init__(self, pid: int, interval: float = 1.0):
        super().__init__(pid, interval)
        self.peak_kib = self.peak_processes = 0

    def sample(self):
        tree = [self.pid, *descendants(self.pid)]
        self.peak_kib = max(self.peak_kib, sum(pss_kib(p) for p in tree))
        self.peak_processes = max(self.peak_processes, len(tree))


class RssSampler(_Sampler):
    """Samples the RSS of a process and of its descendants every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(pid, interval)
        self.peak_self = self.peak_tree = self.peak_children = 0
        self.max_children_count = 0

    def sample(self):
        own = status_kib(self.pid, "VmRSS")
        kids = descendants(self.pid)
        child_rss = sum(status_kib(k, "VmRSS") for k in kids)
        self.peak_self = max(self.peak_self, own)
        self.peak_children = max(self.peak_children, child_rss)
        self.peak_tree = max(self.peak_tree, own + child_rss)
        self.max_children_count = max(self.max_children_count, len(kids))


# -- databases ----------------------------------------------------------------------------------

@contextlib.contextmanager
def throwaway_pg():
    """A fresh PostgreSQL database for one benchmark, dropped afterwards; yields its URL."""
    import psycopg2
    name = f"provisiond_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    def admin(sql):
        conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=3)
        conn.autocommit = True
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()

    admin(f'CREATE DATABASE "{name}"')
    try:
        yield urllib.parse.urlunsplit(urllib.parse.urlsplit(PG_ADMIN_URL)._replace(path=f"/{name}"))
    finally:
        if database.obj is not None:
            database.obj.close()
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg2
        psycopg2.connect(PG_ADMIN_URL, connect_timeout=3).close()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).strip()


# -- a provisiond home ----------------------------------------------------------------------------

class Home:
    """A temporary provisiond home with a key, a current schema and (optionally) a config file."""

    def __init__(self, database_url: str | None = None, settings: dict | None = None, root: Path | None = None):
        self._tmp = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="provisiond-bench-")
            root = Path(self._tmp.name)
        self.path = Path(root) / "home"
        self.path.mkdir(parents=True, exist_ok=True)
        self.overrides = dict(settings or {})
        if self.overrides:
            import yaml
            (self.path / "provisiond.yaml").write_text(yaml.safe_dump(self.overrides))
        self.database_url = database_url or f"sqlite:///{self.path / 'provisiond.db'}"
        self.settings = config.load({"home": self.path, "database_url": self.database_url},
                                    environ={"PROVISIOND_CONFIG": str(self.path / "provisiond.yaml")})
        crypto.create_key_file(self.settings.secret_key_file)
        self.db = db.connect(self.database_url)
        if db.is_postgres(self.db):  # a clean schema for every measurement
            self.db.execute_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        db.upgrade(self.db)
        self.vault = crypto.Vault.from_settings(self.settings)
        self.registry = panels.discover(self.settings.panel_dirs())

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
        env.update(PROVISIOND_HOME=str(self.path), PROVISIOND_DATABASE_URL=self.database_url,
                   PROVISIOND_CONFIG=str(self.path / "provisiond.yaml"), PYTHONPATH=str(ROOT))
        return env

    def close(self) -> None:
        if database.obj is not None:
            database.obj.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def add_whm_servers(home: Home, sims: list[WhmSimulator], group: str = "web",
                    product: str = "starter") -> None:
    """One group of WHM servers (least-loaded placement) and one product on it; each server's
    max_concurrency is its simulator's limit (2 when the simulator has none)."""
    catalog.add_group(group)
    for n, sim in enumerate(sims, 1):
        catalog.add_server(home.registry, home.vault, name=f"whm{n}", panel="cpanel", host=sim.host,
                           port=sim.port, group_name=group, max_accounts=100000,
                           max_concurrency=sim.max_concurrency or 2,
                           credentials={"api_token": TOKEN, "scheme": "http"})
    catalog.add_product(home.registry, name=product, panel="cpanel", group_name=group, package="basic")


def order_wave(home: Home, count: int, prefix: str = "acct", product: str = "starter") -> list[int]:
    """``count`` orders committed in ONE transaction, so the daemon sees the whole wave at once."""
    jobs = []
    with database.atomic():
        for i in range(count):
            _service, job = lifecycle.order(home.registry, home.vault, product=product,
                                            domain=f"{prefix}{i:05d}.example.com",
                                            email=f"owner@{prefix}{i:05d}.example.com",
                                            username=f"{prefix}{i:05d}", ref=f"{prefix.upper()}-{i}")
            jobs.append(job.id)
    return jobs


def order_one(home: Home, i: int, prefix: str = "one", product: str = "starter") -> Job:
    _service, job = lifecycle.order(home.registry, home.vault, product=product,
                                    domain=f"{prefix}{i:05d}.example.com",
                                    email=f"owner@{prefix}{i:05d}.example.com",
                                    username=f"{prefix}{i:05d}", ref=f"{prefix.upper()}-{i}")
    return job


def wait_jobs(job_ids: list[int], timeout: float, poll: float = 0.1) -> dict[str, int]:
    """Wait until every job has ended; returns the count per final status."""
    deadline = time.monotonic() + timeout
    while True:
        counts = {}
        for status, n in (Job.select(Job.status, pw.fn.COUNT(Job.id))
                          .where(Job.id.in_(job_ids)).group_by(Job.status).tuples()):
            counts[status] = n
        if sum(counts.get(s, 0) for s in DONE) >= len(job_ids):
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs not done after {timeout} s: {counts}")
        time.sleep(poll)


# -- the daemon process ---------------------------------------------------------------------------

class DaemonProcess:
    """``python -m provisiond.cli run`` in the home; stopped with SIGTERM."""

    def __init__(self, home: Home, extra_env: dict | None = None):
        self.home = home
        self.log_path = home.path / "daemon.log"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None

    def start(self, settle: float = 0.0) -> "DaemonProcess":
        env = self.home.env()
        env.update(self.extra_env)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "provisiond.cli", "run"], cwd=str(ROOT),
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while b"provisiond running as" not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the daemon did not start:\n" + self.log_path.read_text()[-3000:])
            time.sleep(0.05)
        time.sleep(settle)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self):
        return self if self.proc else self.start()

    def __exit__(self, *exc):
        self.stop()


@contextlib.contextmanager
def simulators(count: int, latency: float, max_concurrency: int | None = None,
               slow_calls: dict[str, float] | None = None):
    """``count`` WHM simulators; each serves ``max_concurrency`` calls at once (None: any
    number) and draws the calls in ``slow_calls`` from a log-normal with the given mean."""
    sims = [WhmSimulator(token=TOKEN, latency=latency, max_concurrency=max_concurrency,
                         slow_calls=slow_calls, seed=n).start() for n in range(count)]
    try:
        yield sims
    finally:
        for sim in sims:
            sim.stop()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, int(-(-q * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


def on_each_database(kinds: list[str] | None, run) -> None:
    """``run(kind, url)`` on SQLite (url None) and on a throwaway PostgreSQL database (skipped,
    saying why, when it is not reachable), then the load average."""
    for kind in kinds or ["sqlite", "postgres"]:
        if kind == "sqlite":
            run(kind, None)
            continue
        problem = pg_available()
        if problem:
            print(f"\n== postgres: skipped, not reachable ({problem}) ==")
            continue
        with throwaway_pg() as url:
            run(kind, url)
    print(f"\n# load average at the end: {load_average()}")
