"""Panel calls run in threads of ansible-playbook (provisiond_linear), and Ansible's plugin
loader is not safe for threads: the first threads to ask for a filter at once got a half-loaded
module or half the filter cache ("No filter named 'bool'", seen in CI). Each check runs in a
fresh interpreter, where no plugin is loaded yet, with many threads asking at the same instant.
Without ``serialise_plugin_loading`` (the script's mode "ansible") 14 of the 16 threads failed,
in 5 runs of 5; it is not a test of its own, since a race need not happen on every run.
"""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, threading
    from ansible.plugins.loader import action_loader, filter_loader, init_plugin_loader, test_loader
    init_plugin_loader()
    if sys.argv[1] == "strategy":  # installs serialise_plugin_loading
        import provisiond.ansible_plugins.strategy.provisiond_linear  # noqa: F401
    threads = 16
    start = threading.Barrier(threads)
    failures = []

    def ask():
        start.wait()
        try:
            found = {"bool": filter_loader.get("bool"), "b64encode": filter_loader.get("ansible.builtin.b64encode"),
                     "truthy": test_loader.get("truthy"), "debug": action_loader.get("debug", None, None, None,
                                                                                       None, None, None)}
            failures.extend(name for name, plugin in found.items() if plugin is None)
        except Exception as exc:
            failures.append(repr(exc))

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(len(failures), sorted(set(failures))[:3])
""")


def _failures(mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("attempt", range(3))
def test_threads_loading_plugins_at_once_all_find_them(attempt):
    assert _failures("strategy") == "0 []"



def test_a_jinja_builtin_is_looked_for_among_the_plugins_once():
    """``int`` is Jinja's, not a plugin: Ansible walked every filter module on disk for it on
    each template compiled; after the first lookup the answer (none) is remembered."""
    script = textwrap.dedent("""
        import pkgutil
        from ansible.plugins.loader import filter_loader, init_plugin_loader
        init_plugin_loader()
        import provisiond.ansible_plugins.strategy.provisiond_linear  # noqa: F401
        walks, walk = [], pkgutil.iter_modules
        pkgutil.iter_modules = lambda *a, **k: walks.append(a) or walk(*a, **k)
        found = [filter_loader.get(name) for name in ("int", "int", "int", "bool", "bool")]
        first = len(walks)
        found += [filter_loader.get("int") for _ in range(20)]
        print(first > 0, len(walks) == first, found[0] is None, found[3] is not None and found[3] is found[4])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "True"]
