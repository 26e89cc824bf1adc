"""Panel simulators that speak the wire contracts in shared/panels (tests, demo, playbook authors)."""

from __future__ import annotations

import shlex
import signal
import threading
from typing import Iterable


SIMULATORS = {
    "cpanel": ("provisiond.sandbox.cpanel", "WhmSimulator"),
    "directadmin": ("provisiond.sandbox.directadmin", "DirectAdminSimulator"),
    "hestia": ("provisiond.sandbox.hestia", "HestiaSimulator"),
    "plesk": ("provisiond.sandbox.plesk", "PleskSimulator"),
    "virtualmin": ("provisiond.sandbox.virtualmin", "VirtualminSimulator"),
    "opterius": ("provisiond.sandbox.opterius", "OpteriusSimulator"),
}
# A manifest credential whose simulator attribute has another name.
ATTRIBUTE_OF = {("cpanel", "api_token"): "token"}


def credentials(panel: str, simulator, credential_fields: Iterable[str]) -> dict[str, str]:
    """The server credentials that log in to a running simulator, by manifest field name."""
    found = {}
    for field in credential_fields:
        value = getattr(simulator, ATTRIBUTE_OF.get((panel, field), field), None)
        if field == "scheme":
            value = "http"  # the simulators serve plain HTTP on loopback
        if isinstance(value, str):
            found[field] = value
    return found


def simulator(panel: str, host: str = "127.0.0.1", port: int = 0):
    """A (not yet started) simulator of ``panel``; ValidationError when none is bundled."""
    import importlib

    from provisiond.errors import ValidationError
    if panel not in SIMULATORS:
        raise ValidationError("panel", f"no bundled simulator for {panel!r} (there are: {', '.join(SIMULATORS)})")
    module, name = SIMULATORS[panel]
    return getattr(importlib.import_module(module), name)(host=host, port=port)


def server_add_lines(panel: str, simulator, credential_fields: Iterable[str]) -> str:
    """The commands that register a running simulator as a server, ready to paste."""
    flags = [f"--credential {shlex.quote(f'{field}={value}')}"
             for field, value in credentials(panel, simulator, credential_fields).items()]
    host, port = simulator.host, simulator.port
    return "\n".join([
        "provisiond group add sandbox",
        " ".join([f"provisiond server add sandbox-{panel} --panel {panel} --host {host} --port {port}",
                  "--group sandbox", *flags])])


def serve(panel: str, host: str, port: int, credential_fields: Iterable[str]) -> int:
    """Run one simulator in the foreground until Ctrl-C (``provisiond sandbox PANEL``)."""
    running = simulator(panel, host, port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    running.start()
    print(f"{panel} simulator on {running.url}; Ctrl-C stops it. To use it:\n"
          + server_add_lines(panel, running, credential_fields), flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    running.stop()
    return 0
