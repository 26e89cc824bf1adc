"""The admin console and the API at scale: page server time, and the API's p99 under 50 clients.

    python bench/console.py [--jobs 100000] [--events 1000000] [--requests 60]
                            [--clients 50] [--per-client 40] [--rate 2] [--db sqlite --db postgres]
                            [--part pages --part api] [--baseline REV] [--workers N] [--repeat 2]

For each database a fresh schema is filled in a few seconds with bulk inserts (``COPY`` on
PostgreSQL, ``executemany`` on SQLite): one service per job over 20 servers and 3 products;
jobs mostly succeeded, about 6 % failed or needs_attention (each with one or two attempts,
``ProvisioningLog``) and a few queued or running; ``--events`` task events (``RunEvent``) spread
over those attempts.

- pages: each console page (/ui/, /ui/jobs/ID, /ui/services, a search on it, /ui/services/REF,
  /ui/servers, /ui/overview) asked ``--requests`` times by a signed-in admin; the figure is the
  server's own time (from the request entering the app to its answer, a middleware's clock),
  p50 and p95. A page that does not answer 200 is listed as missing (built on another branch).
  Baseline: the sign-in page, which reads nothing, in the same run: the ratio is what the data
  costs over the framework's floor. Target: p95 < 150 ms.
- API (PostgreSQL): ``GET /v1/services/{ref}`` over real HTTP from ``--clients`` threads with
  keep-alive, to ``provisiond api`` in a subprocess (uvicorn), ``--per-client`` requests each at
  ``--rate`` a second (50 billing modules polling twice a second is 100 requests a second, far
  above a hosting company's load); p50, p95 and p99 at the client, counted from when each
  request was due. Variants, ``--repeat`` rounds in turn so each sees the same minutes' load:
  the baseline (``--baseline`` REV, default a15f6ee, exported with ``git archive`` and served
  with h11 in one process, as it was installed), this tree with h11, this tree (httptools),
  and this tree with ``--workers N``; then one client alone. Target: p99 < 30 ms.
- Searches (PostgreSQL with migration 22's trigram index): asked with the index, without it
  (dropped) and with it again, in the same run. Searches of one or two characters (no trigram)
  are also asked as they were before ``listing.SHORT`` (every match counted), then again as now
  (counted up to ``listing.COUNTED``).

    python bench/console.py --db postgres --part api --events 0   # the API alone, quicker
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime
import io
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

from provisiond import catalog, db, listing, search_index, tokens  # noqa: E402
from provisiond.models import Job, ProvisioningLog, RunEvent, Service, database  # noqa: E402

SERVERS, PRODUCTS = 20, 3
PAGE_TARGET_MS, API_TARGET_MS = 150.0, 30.0
TASKS = ["Gathering Facts", "check the panel answers", "look up the account", "create the account",
         "set the package", "set the quota", "read the account back", "record the result"]
ANSWER = '{"metadata": {"result": 0, "reason": "Sorry, a group for that username already exists."}}'


# -- filling ------------------------------------------------------------------------------------

def bulk(model, rows: list[dict]) -> None:
    """Insert ``rows`` (field name → Python value) into ``model``'s table as fast as the database
    takes them: COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    fields = [model._meta.fields[name] for name in rows[0]]
    columns = [f.column_name for f in fields]
    values = ([f.db_value(row[f.name]) for f in fields] for row in rows)
    conn = database.connection()
    if db.is_postgres():
        buffer = io.StringIO()
        csv.writer(buffer).writerows(values)
        buffer.seek(0)
        with conn.cursor() as cur:
            cur.copy_expert(f'COPY "{model._meta.table_name}" ({", ".join(columns)}) FROM STDIN WITH CSV', buffer)
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{model._meta.table_name}', 'id'), "
                        f"(SELECT max(id) FROM \"{model._meta.table_name}\"))")
    else:
        marks = ", ".join("?" * len(columns))
        conn.executemany(f'INSERT INTO "{model._meta.table_name}" ({", ".join(columns)}) VALUES ({marks})', values)


def fill(home: c.Home, jobs: int, events: int, seed: int = 12) -> dict:
    """Servers, products, ``jobs`` services with a job each, attempts for the failed ones and
    ``events`` task events over them; returns what the measurements need."""
    rng = random.Random(seed)
    catalog.add_group("web")
    servers = [catalog.add_server(home.registry, home.vault, name=f"whm{n}", panel="cpanel", host="127.0.0.1",
                                  port=2087, group_name="web", max_accounts=100_000,
                                  credentials={"api_token": c.TOKEN, "scheme": "http"}).id
               for n in range(1, SERVERS + 1)]
    products = [catalog.add_product(home.registry, name=f"plan{n}", panel="cpanel", group_name="web",
                                    package="basic").id for n in range(PRODUCTS)]
    now = datetime.datetime(2026, 11, 28, 12, 0, 0)
    service_rows, job_rows, log_rows, failed = [], [], [], []
    for i in range(1, jobs + 1):
        made = now - datetime.timedelta(seconds=(jobs - i) * 30)
        roll = rng.random()
        status = ("failed" if roll < 0.04 else "needs_attention" if roll < 0.06 else "queued" if roll < 0.09
                  else "running" if roll < 0.095 else "cancelled" if roll < 0.11 else "succeeded")
        server = servers[i % SERVERS]
        service_rows.append({
            "id": i, "ref": f"INV-{100000 + i}", "product": products[i % PRODUCTS], "server": server,
            "domain": f"shop{i}.example{i % 97}.com", "email": f"owner{i}@mail{i % 89}.example.net",
            "name": None, "username": f"u{i:07d}", "remote_id": None, "package": "basic", "password": None,
            "password_state": "generated", "status": {"succeeded": "active", "cancelled": "closed"}.get(
                status, "pending" if status in ("queued", "running") else "failed"),
            "status_reason": None, "pending_reason": None, "last_error": None,
            "paid_until": (made + datetime.timedelta(days=rng.randint(0, 365))).date(), "hold_until": None,
            "never_terminate": False, "fields": {}, "variant": None, "created_at": made, "updated_at": made})
        attempts = rng.randint(1, 2) if status in ("failed", "needs_attention") else 0
        job_rows.append({
            "id": i, "service": i, "server": server, "action": "create", "params": {}, "secret_params": None,
            "status": status, "attempts": attempts, "max_attempts": 6,
            "run_after": made + datetime.timedelta(minutes=30) if status == "queued" else made,
            "lease_owner": None, "lease_expires_at": None, "fence": 0, "cancel_requested": False,
            "idempotency_key": None, "last_error": "create the account: rc 1" if attempts else None,
            "created_at": made, "updated_at": made,
            "finished_at": made + datetime.timedelta(seconds=20) if status not in ("queued", "running") else None})
        for attempt in range(1, attempts + 1):
            started = made + datetime.timedelta(minutes=attempt)
            log_rows.append({
                "id": len(log_rows) + 1, "job": i, "attempt": attempt, "server": server, "panel": "cpanel",
                "action": "create", "status": "failed", "rc": 2, "started_at": started,
                "finished_at": started + datetime.timedelta(seconds=9), "duration": 9.0,
                "failed_task": "create the account", "message": "the panel refused the account",
                "panel_answer": ANSWER, "stdout_excerpt": "fatal: [acct]: FAILED!", "artifacts_path": None,
                "playbook_folder": None})
            failed.append(i)
    with database.atomic():
        bulk(Service, service_rows)
        bulk(Job, job_rows)
        bulk(ProvisioningLog, log_rows)
    per_attempt = max(1, events // max(1, len(log_rows)))
    event_rows, seq_of = [], {}
    for n in range(events):
        log = log_rows[n // per_attempt] if n // per_attempt < len(log_rows) else rng.choice(log_rows)
        seq = seq_of[log["id"]] = seq_of.get(log["id"], 0) + 1
        task = TASKS[(seq - 1) % len(TASKS)]
        event_rows.append({
            "id": n + 1, "attempt": log["id"], "seq": seq, "event": "runner_on_ok", "play": "create an account",
            "task": task, "status": "changed" if seq % 3 == 0 else "ok",
            "started_at": log["started_at"] + datetime.timedelta(milliseconds=seq * 20), "duration": 0.02,
            "stdout": f"\x1b[0;32mok: [acct] => {task}\x1b[0m", "detail": None})
        if len(event_rows) == 100_000:
            with database.atomic():
                bulk(RunEvent, event_rows)
            event_rows = []
    with database.atomic():
        bulk(RunEvent, event_rows)
    if db.is_postgres():
        # VACUUM as a live table gets from autovacuum: it also merges the GIN pending list of the
        # trigram index (rows bulk-loaded into it wait there unsorted; the first searches after
        # the fill measured 152 ms p95 against 34 ms once merged). Outside a transaction.
        database.execute_sql("VACUUM ANALYZE")
    held = [row["id"] for row in job_rows if row["status"] == "failed" and row["attempts"]]
    return {"job": held[len(held) // 2], "ref": service_rows[len(service_rows) // 2]["ref"],
            "refs": [row["ref"] for row in service_rows], "search": "example7.com",
            "pages": -(-len(service_rows) // 50)}


# -- pages --------------------------------------------------------------------------------------

def page_times(home: c.Home, found: dict, requests: int) -> tuple[dict, list[str]]:
    """Server milliseconds of each console page, asked ``requests`` times; and the pages that
    did not answer 200. On PostgreSQL with the search's trigram index (migration 22), the
    searches are asked with it, then without it (dropped: the scan, as before), then with it
    again (made again), so the ratio is of the same minutes' load."""
    from fastapi import Request
    from fastapi.testclient import TestClient
    from provisiond import api
    if db.is_postgres():  # as `provisiond api` binds it: the pool
        database.obj.close()
        db.connect(home.database_url, pool=True)
    app = api.create_app(home.settings, home.vault)
    spent: list[float] = []

    @app.middleware("http")
    async def clock(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        spent.append((time.perf_counter() - started) * 1000)
        return response

    token = tokens.create("bench-admin", scope="admin")
    pages = {"/ui/login (baseline)": "/ui/login", "/ui/": "/ui/", "/ui/jobs/ID": f"/ui/jobs/{found['job']}",
             "/ui/services": "/ui/services", "/ui/services?q=": f"/ui/services?q={found['search']}",
             "/ui/services?page=(middle)": f"/ui/services?page={max(1, found['pages'] // 2)}", "/ui/services/REF": f"/ui/services/{found['ref']}",
             "/ui/servers": "/ui/servers", "/ui/overview": "/ui/overview"}
    searches = {f"/ui/services?q= ({what})": f"/ui/services?q={text}" for what, text in
                [("2 letters", "07"), ("1 letter", "7"), ("2 letters, no match", "qz"),
                 ("part of an email", "owner4711@")]}
    pages.update(searches)
    times, missing = {}, []
    with TestClient(app, follow_redirects=False) as client:
        assert client.post("/ui/login", data={"token": token}).status_code == 303

        def measure(pages: dict, suffix: str = "") -> None:
            for name, path in pages.items():
                first = client.get(path)
                if first.status_code != 200:
                    missing.append(f"{name} ({first.status_code})")
                    continue
                assert "canary" not in first.text
                spent.clear()
                for _ in range(requests):
                    client.get(path)
                times[name + suffix] = list(spent)

        measure(pages)
        short = {name: path for name, path in searches.items() if len(path.split("?q=")[1]) < listing.SHORT}
        kept, listing.SHORT = listing.SHORT, 0  # before: every match counted, as any search
        try:
            measure(short, " counted in full (before)")
        finally:
            listing.SHORT = kept
        measure(short, " counted to 1,000, again")
        if search_index.exists(database.obj):
            searches = {name: path for name, path in pages.items() if "?q=" in path}
            database.execute_sql(f"DROP INDEX {search_index.NAME}")
            measure(searches, " without the index")
            search_index.create(database.obj)
            measure(searches, " with it, again")
    return times, missing


# -- the API over HTTP --------------------------------------------------------------------------

# ``provisiond api`` from ``sys.argv[1]`` (a source tree); "h11" as argv[2] serves HTTP with h11
# as uvicorn did before httptools was a dependency (``auto`` takes httptools when installed).
SERVE = """
import sys
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "h11":
    import uvicorn.config
    uvicorn.config.HTTP_PROTOCOLS["auto"] = "uvicorn.protocols.http.h11_impl:H11Protocol"
import provisiond
from provisiond.cli import main
print("serving", provisiond.__file__, flush=True)
sys.exit(main(sys.argv[3:]))
"""


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of serving the API: a source tree, its HTTP parser and its processes."""

    name: str
    tree: Path
    http: str = "auto"
    workers: int = 1


def baseline_tree(rev: str, into: Path) -> Path:
    """The source of ``rev`` (a commit of this repository), exported into ``into``."""
    archive = subprocess.run(["git", "-C", str(c.ROOT), "archive", rev, "provisiond"], check=True,
                             capture_output=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


@contextlib.contextmanager
def api_process(home: c.Home, variant: Variant):
    from tests.helpers import free_port
    port = free_port()
    log_path = home.path / f"api-{variant.name.replace(' ', '_')}.log"
    argv = ["api", "--port", str(port)] + (["--workers", str(variant.workers)] if variant.workers > 1 else [])
    env = dict(home.env(), PYTHONPATH="")
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(variant.tree), variant.http, *argv],
                            cwd=str(variant.tree), env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        import requests
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/ui/login", timeout=5)
                break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text()[-2000:])
                time.sleep(0.1)
        served = next(line for line in log_path.read_text().splitlines() if line.startswith("serving"))
        assert served.split()[1].startswith(str(variant.tree)), served  # the tree asked for, not another
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def api_latency(home: c.Home, found: dict, variant: Variant, clients: int, per_client: int,
                rate: float = 0.0) -> list[float]:
    """Client milliseconds of GET /v1/services/{ref} from ``clients`` threads at once.

    ``rate`` > 0: each client sends ``rate`` requests a second on a fixed schedule (a billing
    module polling), and a request's time counts from when it was due, so a request that had to
    wait for the one before it is not flattered (no coordinated omission). 0: back to back,
    which measures the server's saturation, not what a client of a loaded server sees."""
    import requests
    token = tokens.create(f"bench-{uuid.uuid4().hex[:12]}")
    refs = found["refs"]
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(base: str, seed: int):
        rng = random.Random(seed)
        mine = []
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            session.get(f"{base}/v1/services/{refs[0]}", timeout=30)  # the connection is open
            start.wait()
            first = time.perf_counter() + (rng.random() / rate if rate else 0.0)  # clients out of step
            for n in range(per_client):
                due = first + n / rate if rate else time.perf_counter()
                time.sleep(max(0.0, due - time.perf_counter()))
                answer = session.get(f"{base}/v1/services/{rng.choice(refs)}", timeout=30)
                mine.append((time.perf_counter() - due) * 1000)
                if answer.status_code != 200:
                    errors.append(str(answer.status_code))
        with lock:
            times.extend(mine)

    with api_process(home, variant) as base:
        threads = [threading.Thread(target=client, args=(base, n)) for n in range(clients)]
        for each in threads:
            each.start()
        for each in threads:
            each.join()
    if errors:
        raise RuntimeError(f"{len(errors)} answers were not 200: {sorted(set(errors))}")
    return times


def api_variants(args, scratch: Path) -> list[Variant]:
    """The baseline (``--baseline`` REV as it was installed then: h11, one process) first, then
    this tree in one process (with h11 too, to tell the parser's part), and with each of
    ``--workers``."""
    found = [] if args.baseline == "none" else [
        Variant(f"before ({args.baseline})", baseline_tree(args.baseline, scratch / "baseline"), http="h11")]
    found.append(Variant("now, 1 process, h11", c.ROOT, http="h11"))  # what httptools alone brings
    found.append(Variant("now, 1 process", c.ROOT))
    found += [Variant(f"now, --workers {n}", c.ROOT, workers=n) for n in args.workers if n > 1]
    return found


def measure_api(home: c.Home, found: dict, args) -> None:
    """Each variant ``--repeat`` times, in turn (the machine's load changes alike for all), and
    the variants' percentiles over all their rounds; then one client alone on this tree."""
    with tempfile.TemporaryDirectory(prefix="console-bench-") as scratch:
        variants = api_variants(args, Path(scratch))
        times: dict[str, list[float]] = {v.name: [] for v in variants}
        print(f"  GET /v1/services/{{ref}}, real HTTP, {args.clients} clients x {args.per_client} at "
              f"{args.rate:g}/s each, {args.repeat} rounds in turn; client ms from when each request was due")
        print(f"  {'variant':<34} {'p50':>7} {'p95':>7} {'p99':>7} {'p99 ratio':>9}  target p99 < {API_TARGET_MS:.0f}")
        for round_ in range(1, args.repeat + 1):
            c.wait_for_quiet(args.max_load, 60)
            for variant in variants:
                mine = api_latency(home, found, variant, args.clients, args.per_client, args.rate)
                times[variant.name] += mine
                print(api_row(f"round {round_}: {variant.name}", mine, None, None) + f"  load {c.load_average()}")
        base = c.percentile(times[variants[0].name], 99)
        for variant in variants:
            print(api_row(f"all rounds: {variant.name}", times[variant.name], base, API_TARGET_MS))
        now = next(v for v in variants if v.name == "now, 1 process")
        alone = api_latency(home, found, now, 1, args.per_client * 5, args.rate * 5)
        print(api_row("one client alone (now, 1 proc)", alone, None, None))


def api_row(name: str, values: list[float], base: float | None, target: float | None) -> str:
    p50, p95, p99 = (c.percentile(values, q) for q in (50, 95, 99))
    ratio = f"{p99 / base:8.2f}x" if base else "        -"
    verdict = "" if target is None else ("ok" if p99 < target else "OVER")
    return f"  {name:<34} {p50:7.1f} {p95:7.1f} {p99:7.1f} {ratio}  {verdict}"


# -- a run --------------------------------------------------------------------------------------

def row(name: str, values: list[float], q: float, base: float | None, target: float | None) -> str:
    p50, pq = c.percentile(values, 50), c.percentile(values, q)
    ratio = f"{pq / base:6.1f}x" if base else "     -"
    verdict = "" if target is None else ("ok" if pq < target else "OVER")
    return f"  {name:<48} {p50:8.1f} {pq:8.1f} {ratio}  {verdict}"


def measure_pages(home: c.Home, found: dict, args) -> None:
    times, missing = page_times(home, found, args.requests)
    base = c.percentile(times.get("/ui/login (baseline)", []), 95)
    print(f"  {'page (server time, ms)':<48} {'p50':>8} {'p95':>8} {'ratio':>7}  target p95 < {PAGE_TARGET_MS:.0f}")
    for name, values in times.items():
        print(row(name, values, 95, None if "baseline" in name else base,
                  None if "baseline" in name else PAGE_TARGET_MS))
    if missing:
        print(f"  missing (not 200 on this branch): {', '.join(missing)}")


def run_case(kind: str, url: str | None, args) -> None:
    home = c.Home(url)
    try:
        started = time.perf_counter()
        found = fill(home, args.jobs, args.events)
        print(f"\n== {kind}: {args.jobs} jobs and services, {RunEvent.select().count()} events, "
              f"{ProvisioningLog.select().count()} attempts; filled in {time.perf_counter() - started:.1f} s ==")
        if "pages" in args.part:
            measure_pages(home, found, args)
        if kind == "postgres" and "api" in args.part:
            measure_api(home, found, args)
    finally:
        home.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=60, help="requests per page")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=40)
    parser.add_argument("--rate", type=float, default=2.0,
                        help="requests a second from each client (0: back to back)")
    parser.add_argument("--max-load", type=float, default=4.0, help="wait (up to 60 s) for a load below this")
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--part", action="append", choices=["pages", "api"],
                        help="what to measure (default both; the API on PostgreSQL only)")
    parser.add_argument("--baseline", default="a15f6ee",
                        help="the commit whose API is the baseline (h11, one process), or none")
    parser.add_argument("--workers", type=int, action="append",
                        help="also serve with `provisiond api --workers N` (default: 2)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of the API variants, in turn")
    args = parser.parse_args(argv)
    args.part = args.part or ["pages", "api"]
    args.workers = args.workers or [2]
    c.print_machine()
    c.on_each_database(args.db, lambda kind, url: run_case(kind, url, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
