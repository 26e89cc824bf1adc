"""One worker process of test_01: claim and finish jobs until the queue is empty (no playbook).

    python _claim_loop.py DATABASE_URL OWNER BATCH

Prints ``ready``, waits for a line on stdin (so all workers start together), then claims
``BATCH`` jobs at a time and finishes each. Every exception is caught and counted, never
retried around: the test wants to know whether a "database is locked" ever escapes. Ends by
printing one JSON line: the ids it finished, the ids whose finish it lost, the errors.
"""

from __future__ import annotations

import json
import sys
import time

from provisiond import db, queue
from provisiond.models import utcnow

LEASE = 600


def main(url: str, owner: str, batch: int) -> None:
    database = db.connect(url)
    # Durability of each commit is test_12's subject; here only the claim's locking counts,
    # so commits skip the wait for the disk (the locks and isolation are unchanged).
    database.execute_sql("SET synchronous_commit TO off" if db.is_postgres(database)
                         else "PRAGMA synchronous = NORMAL")
    print("ready", flush=True)
    sys.stdin.readline()
    finished, not_owned, errors, claims = [], [], [], 0
    empty_in_a_row = 0
    while empty_in_a_row < 3 and len(errors) < 50:
        try:
            jobs = queue.claim(owner, utcnow(), batch, LEASE)
        except Exception as exc:  # noqa: BLE001 - counted, reported to the test
            errors.append(f"claim: {type(exc).__name__}: {exc}")
            continue
        if not jobs:
            empty_in_a_row += 1
            time.sleep(0.05)
            continue
        empty_in_a_row = 0
        claims += 1
        for job in jobs:
            try:
                (finished if queue.finish(job, utcnow()) else not_owned).append(job.id)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"finish {job.id}: {type(exc).__name__}: {exc}")
    print(json.dumps({"owner": owner, "finished": finished, "not_owned": not_owned,
                      "errors": errors, "claims": claims}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
