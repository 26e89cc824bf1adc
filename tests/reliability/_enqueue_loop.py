"""An enqueuing process for test_12: enqueues until it is killed, acknowledging each job.

    python _enqueue_loop.py DATABASE_URL SERVER_ID PREFIX

A line is printed (and flushed) only after the enqueue returned, that is after its commit:
``job <id>`` for a single enqueue, ``key <idempotency key>`` for each row of a bulk one.
"""

from __future__ import annotations

import sys

from provisiond import db, queue
from provisiond.models import utcnow


def main(url: str, server_id: int, prefix: str) -> None:
    db.connect(url)
    payload = "x" * 2000  # heavy rows: more pages written per commit
    n = 0
    while True:
        n += 1
        if n % 10:
            job, _ = queue.enqueue("test_connection", server=server_id, params={"n": n, "pad": payload})
            print(f"job {job.id}", flush=True)
        else:
            rows = [{"action": "test_connection", "service": None, "server": server_id,
                     "params": {"n": n, "k": k}, "idempotency_key": f"{prefix}:{n}:{k}", "max_attempts": 1}
                    for k in range(20)]
            queue.enqueue_many(rows, utcnow())
            print("\n".join(f"key {row['idempotency_key']}" for row in rows), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
