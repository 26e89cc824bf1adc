"""``ansible-playbook`` as provisiond runs it: Ansible's own command, without importing paramiko
at start-up.

Ansible imports paramiko while it loads its constants (``ansible.utils.ssh_functions``, through
``ansible.module_utils.compat.paramiko``) only to check that it is installed, and paramiko
imports invoke: together 18 MiB of private memory and a quarter of the command's start-up CPU
(``python -X importtime``), paid once per run, that is once per busy server. No bundled playbook
uses the paramiko connection (SSH panels use OpenSSH). Here ``paramiko`` starts as a stand-in
module that imports the real one the first time anything reads from it, so a playbook that does
use ``connection: paramiko`` still gets it.

Before its first play Ansible loads every connection plugin (``PlaybookExecutor.run``: "preload
become/connection/shell"), and the paramiko plugin's module reads ``paramiko.MissingHostKeyPolicy``
as it loads (``plugins/connection/_paramiko_ssh.py``, ``class MyAddPolicy``). The stand-in
answers that one name itself, with a class of the same interface (paramiko's own is a base class
whose ``missing_host_key`` does nothing, and ``SSHClient.set_missing_host_key_policy`` takes any
object that has the method); reading any other name imports paramiko.

Ansible also reads its own routing metadata (``config/ansible_builtin_runtime.yml``, 370 KB of
YAML) in every process, the first time it looks for a plugin: a quarter of a run's start-up.
Its loader says it may be replaced, and hands a content id for a cache
(``utils/collection_loader/_collection_meta.py``). Here the parsed metadata is kept as JSON in
the folder ``PROVISIOND_ANSIBLE_CACHE`` names (``cache/`` in the daemon's home), under the digest
of the YAML, so an upgraded Ansible gets its own.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import tempfile
import types
from pathlib import Path

CACHE_FOLDER = "PROVISIOND_ANSIBLE_CACHE"


class MissingHostKeyPolicy:
    """paramiko.client.MissingHostKeyPolicy: the interface of a host key policy."""

    def missing_host_key(self, client, hostname, key):
        pass


class _Deferred(types.ModuleType):
    """Stands in ``sys.modules`` for a module until the first attribute is read from it.

    Except the file a module was loaded from: ``inspect.getmodule`` asks every module in
    ``sys.modules`` for it, and Ansible calls that for each deprecation it warns of, also one
    that is not shown (``Display.deprecated``, which a strategy plugin outside ansible.builtin
    sets off at every play).
    """

    def __getattr__(self, attribute: str):
        if attribute in ("__file__", "__cached__", "__loader__"):
            raise AttributeError(attribute)
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = sys.modules.get(name) or importlib.import_module(name)
        sys.modules[name] = real
        self.__dict__.update(real.__dict__)  # later reads of this stand-in are plain lookups
        return getattr(real, attribute)


def defer_import(name: str, **answers) -> None:
    """Put a stand-in for ``name`` in ``sys.modules``; ``answers`` are names it gives without
    importing the module."""
    if name not in sys.modules:
        stand_in = _Deferred(name)
        stand_in.__spec__ = None  # the import system reads __spec__ of a module it finds loaded
        stand_in.__dict__.update(answers)
        sys.modules[name] = stand_in


def defer_paramiko() -> None:
    defer_import("paramiko", MissingHostKeyPolicy=MissingHostKeyPolicy)


def cache_routing_metadata(folder: Path) -> None:
    """Keep the collection loader's parsed metadata as JSON files in ``folder`` (see above)."""
    from ansible.utils.collection_loader import _collection_finder

    parse = _collection_finder._meta_yml_to_dict
    if parse is None or getattr(parse, "provisiond_cached", False):
        return

    def cached(data, content_id):
        raw = data.encode() if isinstance(data, str) else bytes(data)
        path = Path(folder) / f"ansible-metadata-{hashlib.sha256(raw).hexdigest()[:40]}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        parsed = parse(data, content_id)
        try:
            Path(folder).mkdir(mode=0o700, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=folder, prefix=".metadata-")
        except OSError:
            return parsed
        try:   # written whole or not at all: runs that start together each write their own
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(parsed, out)
            os.replace(name, path)
        except (OSError, TypeError, ValueError):
            Path(name).unlink(missing_ok=True)
        return parsed

    cached.provisiond_cached = True
    _collection_finder._meta_yml_to_dict = cached


def main() -> int:
    defer_paramiko()
    if os.environ.get(CACHE_FOLDER):
        cache_routing_metadata(Path(os.environ[CACHE_FOLDER]))
    sys.argv[0] = "ansible-playbook"
    from ansible.cli.playbook import main as ansible_playbook
    return ansible_playbook()


if __name__ == "__main__":
    sys.exit(main())
