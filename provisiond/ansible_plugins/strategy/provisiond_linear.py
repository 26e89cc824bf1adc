"""Ansible's linear strategy, except that it waits for a free fork instead of spinning.

When every fork is busy (each waiting on its panel for seconds), ``StrategyBase._queue_task``
loops over the workers with ``time.sleep(0.0001)`` until one exits: at 2 s of panel latency
that spin doubled the controller's CPU per account, and with one run per server it grew with
the fleet. Here the strategy first sleeps in ``multiprocessing.connection.wait`` on the
workers' sentinels, which the kernel wakes the moment a fork exits; ``_queue_task`` then finds
the free fork on its first pass. Everything else is Ansible's own linear strategy, so the
playbooks behave exactly as under ``linear`` (``ansible_strategy: linear`` uses Ansible's).
"""

from __future__ import annotations

from multiprocessing.connection import wait

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategy

# A worker that exits wakes the wait at once; the timeout only bounds a missed wake-up.
WAIT_SECONDS = 1.0


class StrategyModule(LinearStrategy):
    def _queue_task(self, host, task, task_vars, play_context):
        self._wait_for_a_free_fork()
        return super()._queue_task(host, task, task_vars, play_context)

    def _wait_for_a_free_fork(self) -> None:
        while True:
            sentinels = []
            for worker in self._workers:
                if worker is None or not worker.is_alive():
                    return
                sentinel = getattr(worker, "sentinel", None)
                if sentinel is None:  # not a multiprocessing worker: leave it to Ansible's loop
                    return
                sentinels.append(sentinel)
            wait(sentinels, timeout=WAIT_SECONDS)
