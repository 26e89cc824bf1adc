"""Secrets at rest and secrets in output.

At rest: Fernet (AES-128-CBC + HMAC-SHA256) through MultiFernet, so keys rotate: the first key
encrypts, every key decrypts. Keys come from ``PROVISIOND_SECRET_KEY`` (comma-separated, newest
first) or from the key file (one key a line, newest first), created 0600 by ``provisiond init``.
A tampered or foreign value raises CryptoError: the run fails closed.

In output: ``Redactor`` replaces every known secret value, and its URL- and JSON-encoded forms,
with ``MASK``.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path
from typing import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from provisiond.errors import CryptoError

MASK = "********"
KEY_ENV = "PROVISIOND_SECRET_KEY"


def create_key_file(path: Path) -> bool:
    """Write a new key file (0600) unless one exists; True when written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(Fernet.generate_key().decode() + "\n")
    return True


def rotate_key_file(path: Path) -> None:
    """Put a new key first in the key file; old keys stay, so old values still decrypt.

    The file is on disk (fsync of file and folder) before this returns: values encrypted with
    the new key afterwards must never outlive it."""
    old = path.read_text().strip().splitlines() if path.exists() else []
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join([Fernet.generate_key().decode(), *old]) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _stamp(path: Path | None) -> tuple | None:
    try:
        status = os.stat(path) if path else None
    except FileNotFoundError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino) if status else None


class Vault:
    """Encrypts and decrypts single string values.

    A vault read from the key file notices when the file changes (`provisiond keys rotate` put
    a new key first): it reads the keys again, so a running daemon encrypts with the new key
    and decrypts values re-encrypted with it, without a restart.
    """

    def __init__(self, keys: Iterable[str], key_file: Path | None = None):
        self._fernet = self._keys(keys)
        self._key_file = key_file
        self._stamp = _stamp(key_file)

    @staticmethod
    def _keys(keys: Iterable[str]) -> MultiFernet:
        keys = [k.strip() for k in keys if k and k.strip()]
        if not keys:
            raise CryptoError("no secret key configured: run `provisiond init` or set PROVISIOND_SECRET_KEY")
        try:
            return MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError) as exc:
            raise CryptoError("a configured secret key is not a valid Fernet key") from exc

    @classmethod
    def from_settings(cls, settings) -> "Vault":
        from_env = os.environ.get(KEY_ENV, "")
        if from_env:
            return cls(from_env.split(","))
        path = Path(settings.secret_key_file)
        if not path.exists():
            raise CryptoError(f"secret key file {path} is missing: run `provisiond init`")
        return cls(path.read_text().splitlines(), key_file=path)

    def _reload(self) -> bool:
        """Read the key file again if it changed since; True when the keys were replaced."""
        stamp = _stamp(self._key_file)
        if stamp == self._stamp or stamp is None:
            return False
        self._fernet = self._keys(self._key_file.read_text().splitlines())
        self._stamp = stamp
        return True

    def encrypt(self, value: str) -> str:
        self._reload()
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, what: str = "a stored secret") -> str:
        return self._open(lambda f: f.decrypt(token.encode("ascii")).decode("utf-8"),
                          f"{what} cannot be decrypted (tampered, or encrypted with an unknown key)")

    def rotate(self, token: str, what: str = "a stored secret") -> str:
        """Re-encrypt a value with the newest key."""
        self._reload()
        return self._open(lambda f: f.rotate(token.encode("ascii")).decode("ascii"),
                          f"{what} cannot be decrypted during rotation (tampered, or encrypted "
                          "with an unknown key)")

    def _open(self, operation, problem: str) -> str:
        for attempt in (1, 2):
            try:
                return operation(self._fernet)
            except (InvalidToken, UnicodeError, ValueError) as exc:
                if attempt == 1 and self._reload():  # encrypted with a key added since
                    continue
                raise CryptoError(problem) from exc
        raise AssertionError("unreachable")

    def encrypt_json(self, value) -> str:
        return self.encrypt(json.dumps(value))

    def decrypt_json(self, token: str | None, what: str = "a stored secret"):
        return None if token is None else json.loads(self.decrypt(token, what))


class Redactor:
    """Replaces known secret values (and their encoded forms) in text and nested data."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._needles: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < 4:
            return
        forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
                 json.dumps(secret)[1:-1]}
        self._needles.extend(f for f in forms if f not in self._needles)
        self._needles.sort(key=len, reverse=True)

    def text(self, value: str | None) -> str | None:
        if value is None:
            return None
        for needle in self._needles:
            value = value.replace(needle, MASK)
        return value

    def data(self, value):
        if isinstance(value, (dict, list, tuple)) and not self._found_in(value):
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value

    def _found_in(self, value) -> bool:
        """Whether any secret may be inside: one scan of the JSON text (its escaped form is a needle).

        Most job events hold no secret; checking each string against every needle made
        redaction grow with the square of a batch's size.
        """
        try:
            blob = json.dumps(value, default=str)
        except (TypeError, ValueError):
            return True
        return any(needle in blob for needle in self._needles)
