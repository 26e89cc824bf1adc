"""A real OpenSSH sshd on a loopback port, with keys generated for the test.

``with Sshd(tmp_path) as sshd:`` gives ``sshd.port``, ``sshd.client_key`` (the private key text
provisiond stores) and ``sshd.host_key`` (``"<type> <base64>"``, what provisiond should pin).
It lets root in with that key only, which is what SSH panels (CloudPanel, plain Linux) expect.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.helpers import free_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


class Sshd:
    def __init__(self, folder: Path, env: dict[str, str] | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = env or {}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Sshd":
        host_key, client_key = self.folder / "host_key", self.folder / "client_key"
        _keygen(host_key)
        _keygen(client_key)
        (self.folder / "authorized_keys").write_text((self.folder / "client_key.pub").read_text())
        os.chmod(self.folder / "authorized_keys", 0o600)
        # sshd keeps only the first SetEnv line: every variable goes on one.
        env_lines = ("SetEnv " + " ".join(f'"{k}={v}"' for k, v in self.env.items()) + "\n") if self.env else ""
        config = self.folder / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {self.folder / 'authorized_keys'}\nPidFile {self.folder / 'sshd.pid'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "UsePAM no\nStrictModes no\nLogLevel ERROR\nSubsystem sftp internal-sftp\n" + env_lines)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.start()
        self.client_key = client_key.read_text()
        kind, blob = (self.folder / "host_key.pub").read_text().split()[:2]
        self.host_key = f"{kind} {blob}"
        return self

    def start(self) -> None:
        """Start sshd on its port (again, after ``stop``: same port, same keys)."""
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"sshd exited: {self.process.stderr.read().decode()}")
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop sshd: the host refuses connections until ``start``."""
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def __exit__(self, *exc) -> None:
        self.stop()
