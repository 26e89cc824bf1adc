"""Panel simulators that speak the wire contracts in shared/panels (tests, demo, playbook authors)."""

from __future__ import annotations

import signal
import threading


SIMULATORS = {
    "cpanel": ("provisiond.sandbox.cpanel", "WhmSimulator"),
    "directadmin": ("provisiond.sandbox.directadmin", "DirectAdminSimulator"),
    "hestia": ("provisiond.sandbox.hestia", "HestiaSimulator"),
    "plesk": ("provisiond.sandbox.plesk", "PleskSimulator"),
    "virtualmin": ("provisiond.sandbox.virtualmin", "VirtualminSimulator"),
    "opterius": ("provisiond.sandbox.opterius", "OpteriusSimulator"),
}
CREDENTIAL_ATTRIBUTES = ("username", "token", "api_token", "api_key", "password", "login_key",
                         "access_key", "secret_key")


def serve(panel: str, host: str, port: int) -> int:
    """Run one simulator in the foreground until Ctrl-C (``provisiond sandbox PANEL``)."""
    import importlib
    module, name = SIMULATORS[panel]
    simulator = getattr(importlib.import_module(module), name)(host=host, port=port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    simulator.start()
    credentials = {a: getattr(simulator, a) for a in CREDENTIAL_ATTRIBUTES
                   if isinstance(getattr(simulator, a, None), str)}
    print(f"{panel} simulator on {simulator.url}; credentials {credentials}; Ctrl-C stops it", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    simulator.stop()
    return 0
