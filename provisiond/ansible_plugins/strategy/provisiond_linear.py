"""Ansible's linear strategy, except that it waits instead of polling, and runs panel calls in
threads instead of forks.

Waiting: when every fork is busy (each waiting on its panel for seconds),
``StrategyBase._queue_task`` loops over the workers with ``time.sleep(0.0001)`` until one exits:
at 2 s of panel latency that spin doubled the controller's CPU per account, and with one run per
server it grew with the fleet. Here the strategy first sleeps in
``multiprocessing.connection.wait`` on the workers' sentinels, which the kernel wakes the moment
a worker ends; ``_queue_task`` then finds the free slot on its first pass. Likewise, while a
task's results are pending, Ansible looks for them every ``internal_poll_interval`` (0.001 s by
default); here it sleeps on the sentinels too, since a worker ends right after it sent its
result, and the interval only bounds the sleep.

Threads: Ansible forks a worker process per host and task. For ``panel_call`` (one HTTP request
made in the controller, no connection, no module) the fork cost more CPU than the call: the
~70 MB ansible-playbook copied on write, 40-90 ms a task on this VM against ~15 ms for the task
itself. Such a task runs in a thread of ansible-playbook instead (``ThreadWorker``), on its own
copy of the task and of the host's variables as a fork would, sending its result through the
same queue. ``forks`` still bounds how many run at once (threads and processes alike), so a
server's ``max_concurrency`` holds. A looped ``panel_call`` and every other action (modules over
SSH, ``fail``, ``include_role``) fork as before; a run's timeout or cancel ends the whole
process, threads included.

Servers: one run may serve several servers of an HTTP panel. Each host names its server
(``provisiond_server``) and that server's share of the forks (``provisiond_server_calls``, from its
``max_concurrency``); a host does not start while its server has as many calls in flight as its
share, so no panel gets more calls at once than it takes, whatever the run's forks. A host
whose server is full is set aside, and the loop goes on to the next host; it starts as soon as
one of its server's calls ends (``_queue_deferred``), so a server whose calls take long holds
back none of the others. Hosts are listed one server after the other in turn
(``render.build_parts``).

Ansible's plugin loader is not safe for threads: it puts a plugin's module in ``sys.modules``
before running it (``PluginLoader._load_module_source``), and fills the filter and test caches
one file at a time behind a "not empty yet" check (``Jinja2Loader._ensure_non_collection_wrappers``),
so a second thread can find a half-loaded module or half a cache: "No filter named 'bool'".
The first lookup of each plugin name therefore takes one lock (``serialise_plugin_loading``);
once it has finished, the name's later lookups need none.

Everything else is Ansible's own linear strategy, so the playbooks behave exactly as under
``linear`` (``ansible_strategy: linear`` uses Ansible's, forks and all).
"""

from __future__ import annotations

import collections
import os
import threading
import time
import traceback
from multiprocessing.connection import wait

import ansible.plugins.strategy as strategy_base
from ansible import constants as C
from ansible._internal import _task
from ansible.errors import AnsibleError
from ansible.executor.process.worker import WorkerProcess
from ansible.executor.task_executor import TaskExecutor
from ansible.executor.task_result import _RawTaskResult
from ansible.plugins.loader import Jinja2Loader, PluginLoader
from ansible.plugins.strategy.linear import StrategyModule as LinearStrategy

from provisiond.ansible_plugins.compiled_templates import cache_compiled_templates

# A worker that exits wakes the wait at once; the timeout only bounds a missed wake-up.
WAIT_SECONDS = 1.0


IN_PROCESS_ACTIONS = {"panel_call"}

_PLUGIN_LOADING = threading.RLock()


def serialise_plugin_loading() -> None:
    """Make the first lookup of each plugin name in Ansible's plugin loaders take one lock (see
    the module's docstring). Once a name's first lookup has finished, its module is loaded and
    the caches hold it, and later lookups of that name (every task asks for its action and
    connection, every compiled template for its filters and tests) go on without the lock:
    under it, panel-call threads queued on each other. ``all()`` always takes the lock; it is a
    generator, so its plugins are gathered under the lock, then handed out."""
    def locked_until_known(method):
        def call(self, name, *args, **kwargs):
            key = (name, kwargs.get("class_only"), tuple(kwargs.get("collection_list") or ()))
            known = self.__dict__.setdefault("_provisiond_known", set())
            if key in known:
                return method(self, name, *args, **kwargs)
            with _PLUGIN_LOADING:
                result = method(self, name, *args, **kwargs)
            known.add(key)   # a lookup that raised is tried under the lock again
            return result
        call.provisiond_locked = True
        return call

    def remembered(method):
        """Jinja2Loader.get_with_context: as above, and a name found to be no plugin stays so.
        Ansible looks for a Jinja builtin such as ``int`` among the plugins first, and a
        name it does not find sends it through every collection path on disk (``iter_modules``)
        on each template compiled: a fifth of a busy run's CPU."""
        call_locked = locked_until_known(method)

        def call(self, name, *args, **kwargs):
            if args or kwargs:
                return call_locked(self, name, *args, **kwargs)
            absent = self.__dict__.setdefault("_provisiond_absent", {})
            if name in absent:
                if absent[name] is None:
                    raise KeyError(name)
                return absent[name]
            try:
                result = call_locked(self, name)
            except KeyError:
                absent[name] = None
                raise
            if result.object is None:
                absent[name] = result
            return result
        call.provisiond_locked = True
        return call

    def locked_all(method):
        def all_plugins(self, *args, **kwargs):
            with _PLUGIN_LOADING:
                plugins = list(method(self, *args, **kwargs))
            yield from plugins
        all_plugins.provisiond_locked = True
        return all_plugins

    for cls in (PluginLoader, Jinja2Loader):
        for name in ("get_with_context", "find_plugin_with_context", "all"):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "provisiond_locked", False):
                wrap = (locked_all if name == "all" else remembered if cls is Jinja2Loader and name == "get_with_context"
                        else locked_until_known)
                setattr(cls, name, wrap(method))


serialise_plugin_loading()
cache_compiled_templates()


class ThreadWorker:
    """Runs one host's task in a thread of ansible-playbook itself instead of a forked process.

    For actions that run wholly in the controller and need no connection (panel_call: one HTTP
    request), a fork costs more CPU than the call (copying the ~70 MB parent's page tables,
    then its pages on write). The task runs on its own copy of the Task and of the host's
    variables, as a fork would, and sends its result through the same queue.
    """

    def __init__(self, *, final_q, task_vars, host, task, play_context, loader, variable_manager,
                 shared_loader_obj, worker_id, cliargs):
        self._final_q, self._host, self._task = final_q, host, task.copy(exclude_parent=False)
        self._task_vars, self._play_context = dict(task_vars), play_context
        self._loader, self._variable_manager, self._shared_loader_obj = loader, variable_manager, shared_loader_obj
        self._ended, self._done = os.pipe()   # readable (EOF) once the thread ends: a sentinel
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"task-{worker_id}")
        self.exitcode = None

    @property
    def sentinel(self) -> int:
        return self._ended

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout=None) -> None:
        self._thread.join(timeout)

    def terminate(self) -> None:  # a thread ends with its call; the run's timeout kills the process
        pass

    kill = terminate

    def close(self) -> None:
        if self._ended is not None:
            os.close(self._ended)
            self._ended = None

    def _run(self) -> None:
        try:
            with _task.TaskContext(self._task):
                result = TaskExecutor(self._host, self._task, self._task_vars, self._play_context, self._loader,
                                      self._shared_loader_obj, self._final_q, self._variable_manager).run()
        except BaseException:
            result = {"failed": True, "msg": "the task crashed in the controller",
                      "exception": traceback.format_exc()}
        try:
            self._final_q.send_task_result(_RawTaskResult(host=self._host, task=self._task, return_data=result,
                                                          task_fields=self._task.dump_attrs()))
        finally:
            self.exitcode = 0
            os.close(self._done)


class StrategyModule(LinearStrategy):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._server_of_host: dict[str, str] = {}
        self._deferred: list[tuple] = []   # (host, task, task_vars, play_context) whose server was full

    def _queue_task(self, host, task, task_vars, play_context):
        if self._server_is_full(host.name, task_vars):
            # Queued once its server has room (_queue_deferred), while the loop goes on to the
            # next host. Counted as pending now, so linear waits for it before the next task.
            self._deferred.append((host, task, task_vars, play_context))
            self._pending_results += 1
            return None
        return self._start(host, task, task_vars, play_context)

    def _start(self, host, task, task_vars, play_context):
        self._wait_for_a_free_fork()
        if task.action not in IN_PROCESS_ACTIONS or task.loop:
            return super()._queue_task(host, task, task_vars, play_context)
        # StrategyBase._queue_task does the bookkeeping (throttle, slot, callbacks, counts);
        # only the worker it makes is a thread. The strategy runs on one thread: the swap
        # is seen by this call alone.
        strategy_base.WorkerProcess = ThreadWorker
        try:
            return super()._queue_task(host, task, task_vars, play_context)
        finally:
            strategy_base.WorkerProcess = WorkerProcess

    def _server_is_full(self, host_name: str, task_vars, busy: collections.Counter | None = None) -> bool:
        """Whether this host's server has its share of the forks in flight (see the docstring)."""
        server, limit = task_vars.get("provisiond_server"), task_vars.get("provisiond_server_calls")
        if server is None or not isinstance(limit, int):
            return False
        self._server_of_host[host_name] = server = str(server)
        return (self._busy_servers() if busy is None else busy)[server] >= limit

    def _busy_servers(self) -> collections.Counter:
        """Server → its calls in flight (the run's live workers, by their host's server)."""
        return collections.Counter(self._server_of_host.get(getattr(getattr(w, "_host", None), "name", None))
                                   for w in self._workers if w is not None and w.is_alive())

    def _queue_deferred(self) -> None:
        """Start each deferred host whose server now has room, in the order they came."""
        waiting, busy = [], self._busy_servers()
        for item in self._deferred:
            host, _task, task_vars, _play_context = item
            if self._server_is_full(host.name, task_vars, busy):
                waiting.append(item)
            else:
                self._pending_results -= 1   # _start counts it again
                self._start(*item)
                busy[self._server_of_host[host.name]] += 1
        self._deferred = waiting

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
            if self._deferred:
                self._queue_deferred()
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
