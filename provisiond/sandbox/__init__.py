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


def server_add_lines(panel: str, simulator, credential_fields: Iterable[str]) -> str:
    """The commands that register a running simulator as a server, ready to paste."""
    credentials = []
    for field in credential_fields:
        value = getattr(simulator, ATTRIBUTE_OF.get((panel, field), field), None)
        if field == "scheme":
            value = "http"  # the simulators serve plain HTTP on loopback
        if isinstance(value, str):
            credentials.append(f"--credential {shlex.quote(f'{field}={value}')}")
    host, port = simulator.host, simulator.port
    return "\n".join([
        "provisiond group add sandbox",
        " ".join([f"provisiond server add sandbox-{panel} --panel {panel} --host {host} --port {port}",
                  "--group sandbox", *credentials])])


def serve(panel: str, host: str, port: int, credential_fields: Iterable[str]) -> int:
    """Run one simulator in the foreground until Ctrl-C (``provisiond sandbox PANEL``)."""
    import importlib
    module, name = SIMULATORS[panel]
    simulator = getattr(importlib.import_module(module), name)(host=host, port=port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    simulator.start()
    print(f"{panel} simulator on {simulator.url}; Ctrl-C stops it. To use it:\n"
          + server_add_lines(panel, simulator, credential_fields), flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    simulator.stop()
    return 0
