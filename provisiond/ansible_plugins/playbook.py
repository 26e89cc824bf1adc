"""``ansible-playbook`` as provisiond runs it: Ansible's own command, without importing paramiko
at start-up.

Ansible imports paramiko while it loads its constants (``ansible.utils.ssh_functions``, through
``ansible.module_utils.compat.paramiko``) only to check that it is installed, and paramiko
imports invoke: together 18 MiB of private memory and a quarter of the command's start-up CPU
(``python -X importtime``), paid once per run, that is once per busy server. No bundled playbook
uses the paramiko connection (SSH panels use OpenSSH). Here ``paramiko`` starts as a stand-in
module that imports the real one the first time anything reads from it, so a playbook that does
use ``connection: paramiko`` still gets it.
"""

from __future__ import annotations

import importlib
import sys
import types


class _Deferred(types.ModuleType):
    """Stands in ``sys.modules`` for a module until the first attribute is read from it."""

    def __getattr__(self, attribute: str):
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = sys.modules.get(name) or importlib.import_module(name)
        sys.modules[name] = real
        self.__dict__.update(real.__dict__)  # later reads of this stand-in are plain lookups
        return getattr(real, attribute)


def defer_import(name: str) -> None:
    if name not in sys.modules:
        stand_in = _Deferred(name)
        stand_in.__spec__ = None  # the import system reads __spec__ of a module it finds loaded
        sys.modules[name] = stand_in


def main() -> int:
    defer_import("paramiko")
    sys.argv[0] = "ansible-playbook"
    from ansible.cli.playbook import main as ansible_playbook
    return ansible_playbook()


if __name__ == "__main__":
    sys.exit(main())
