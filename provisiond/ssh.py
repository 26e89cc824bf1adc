"""Host keys of SSH panels: fetched once with paramiko, pinned, checked strictly after.

A server of an SSH panel keeps ``host_key`` as ``"<type> <base64>"``. Runs write it into a
private known_hosts file and ssh runs with ``StrictHostKeyChecking=yes``, so a changed key
fails the run instead of being trusted.
"""

from __future__ import annotations

import base64
import hashlib
import socket

import paramiko

from provisiond.errors import ProvisiondError


def fetch_host_key(host: str, port: int, timeout: float = 10.0) -> str:
    """The server's host key as ``"<type> <base64>"``; ProvisiondError when unreachable."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            transport = paramiko.Transport(sock)
            try:
                transport.start_client(timeout=timeout)
                key = transport.get_remote_server_key()
            finally:
                transport.close()
    except (OSError, paramiko.SSHException) as exc:
        raise ProvisiondError(f"cannot read the SSH host key of {host}:{port}: {exc}") from exc
    return f"{key.get_name()} {key.get_base64()}"


def fingerprint(host_key: str) -> str:
    """OpenSSH's SHA256 fingerprint of a pinned key, as ``ssh-keygen -l`` prints it."""
    blob = base64.b64decode(host_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def known_hosts_line(host: str, port: int, host_key: str) -> str:
    pattern = host if port == 22 else f"[{host}]:{port}"
    return f"{pattern} {host_key}\n"


def check_private_key(text: str) -> None:
    """Refuse a value that is not a private key paramiko can read (naming the field)."""
    from provisiond.errors import ValidationError
    import io
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            kind.from_private_key(io.StringIO(text))
            return
        except (paramiko.SSHException, ValueError):
            continue
    raise ValidationError("credential.private_key", "is not an unencrypted OpenSSH or PEM private key")
