"""Ansible's linear strategy, except that it sleeps until a fork exits instead of polling.

When every fork is busy (each waiting on its panel for seconds), ``StrategyBase._queue_task``
loops over the workers with ``time.sleep(0.0001)`` until one exits: at 2 s of panel latency
that spin doubled the controller's CPU per account, and with one run per server it grew with
the fleet. Here the strategy first sleeps in ``multiprocessing.connection.wait`` on the
workers' sentinels, which the kernel wakes the moment a fork exits; ``_queue_task`` then finds
the free fork on its first pass. Likewise, while a task's results are pending, Ansible looks for
them every ``internal_poll_interval`` (0.001 s by default: 1,000 wake-ups a second for a run
that waits seconds on its panel); here it sleeps on the sentinels too, since a fork exits right
after it sent its result, and the interval only bounds the sleep. Everything else is Ansible's own linear strategy, so the
playbooks behave exactly as under ``linear`` (``ansible_strategy: linear`` uses Ansible's).
"""

from __future__ import annotations

import time
from multiprocessing.connection import wait

from ansible import constants as C
from ansible.errors import AnsibleError
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

    def _wait_on_pending_results(self, iterator):
        """Ansible's own loop (StrategyBase._wait_on_pending_results), sleeping until a fork
        exits (or the poll interval passes) instead of for the poll interval."""
        results = []
        while self._pending_results > 0 and not self._tqm._terminated:
            if self._tqm.has_dead_workers():
                raise AnsibleError("A worker was found in a dead state")
            results.extend(self._process_pending_results(iterator))
            if self._pending_results > 0:
                self._sleep_until_a_fork_exits(C.DEFAULT_INTERNAL_POLL_INTERVAL)
        return results

    def _sleep_until_a_fork_exits(self, timeout: float) -> None:
        sentinels = [w.sentinel for w in self._workers
                     if w is not None and getattr(w, "sentinel", None) is not None and w.is_alive()]
        if sentinels:
            wait(sentinels, timeout=timeout)
        else:  # every fork has exited: its result is on its way through the results thread
            time.sleep(0.001)
