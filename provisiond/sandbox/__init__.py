"""Panel simulators that speak the wire contracts in shared/panels (tests, demo, playbook authors)."""

from __future__ import annotations

import signal
import threading


def serve(panel: str, host: str, port: int, token: str) -> int:
    """Run one simulator in the foreground until Ctrl-C (``provisiond sandbox cpanel``)."""
    from provisiond.sandbox.cpanel import WhmSimulator
    simulators = {"cpanel": lambda: WhmSimulator(token=token, host=host, port=port)}
    simulator = simulators[panel]()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    simulator.start()
    print(f"{panel} simulator on {simulator.url} (token {token}); Ctrl-C stops it", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    simulator.stop()
    return 0
