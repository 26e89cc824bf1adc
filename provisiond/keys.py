"""Key rotation: a new key first in the key file, every stored secret re-encrypted with it.

The stored secrets are the ``enc:`` values of ``Server.credentials``, ``Service.password``,
``Job.secret_params`` and ``StepSecret.value``. Before anything changes, every one of them is decrypted with the current
keys: a value that cannot be (tampered, or from a lost key) stops the rotation with an error
naming it, and neither the key file nor the database is touched. Then the key file gets its new
first key (old keys stay, so anything not yet re-encrypted still reads), and all values are
re-encrypted with the new key in one transaction. Running daemons read the changed key file by
themselves (``crypto.Vault``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

from provisiond.catalog import ENCRYPTED
from provisiond.config import Settings
from provisiond.crypto import KEY_ENV, Vault, rotate_key_file
from provisiond.errors import ConfigError
from provisiond.models import Job, Server, Service, StepSecret, database


def _stored() -> Iterator[tuple[str, str, Callable[[Callable[[str], str]], None]]]:
    """(what, token, write) for every stored secret; ``write(re_encrypt)`` stores the new token."""
    for server in Server.select(Server.id, Server.name, Server.credentials):
        for field, value in (server.credentials or {}).items():
            if isinstance(value, str) and value.startswith(ENCRYPTED):
                yield (f"credential {field} of server {server.name}", value[len(ENCRYPTED):],
                       _credential_writer(server.id, field))
    for service_id, ref, token in (Service.select(Service.id, Service.ref, Service.password)
                                   .where(Service.password.is_null(False)).tuples()):
        yield (f"password of service {ref}", token,
               lambda new, sid=service_id: Service.update(password=new).where(Service.id == sid).execute())
    for job_id, token in Job.select(Job.id, Job.secret_params).where(Job.secret_params.is_null(False)).tuples():
        yield (f"parameters of job {job_id}", token,
               lambda new, jid=job_id: Job.update(secret_params=new).where(Job.id == jid).execute())
    for row_id, step, name, token in StepSecret.select(StepSecret.id, StepSecret.step, StepSecret.name,
                                                       StepSecret.value).tuples():
        yield (f"secret {name} of step {step} (row {row_id})", token,
               lambda new, rid=row_id: StepSecret.update(value=new).where(StepSecret.id == rid).execute())


def _credential_writer(server_id: int, field: str):
    def write(new: str) -> None:
        server = Server.get_by_id(server_id)
        credentials = dict(server.credentials)
        credentials[field] = ENCRYPTED + new
        Server.update(credentials=credentials).where(Server.id == server_id).execute()
    return write


def check_all(vault: Vault) -> int:
    """Decrypt every stored secret (and forget it); CryptoError names the first that fails."""
    count = 0
    for what, token, _ in _stored():
        vault.decrypt(token, what)
        count += 1
    return count


def reencrypt_all(vault: Vault) -> dict[str, int]:
    """Re-encrypt every stored secret with the vault's newest key, in one transaction.

    Returns how many values of each kind were re-encrypted; on CryptoError nothing changed.
    """
    counts = {"server credentials": 0, "service passwords": 0, "job parameters": 0, "step secrets": 0}
    with database.atomic():
        for what, token, write in list(_stored()):
            write(vault.rotate(token, what))
            kind = ("server credentials" if what.startswith("credential") else
                    "service passwords" if what.startswith("password") else
                    "step secrets" if what.startswith("secret") else "job parameters")
            counts[kind] += 1
    return counts


def rotate_all(settings: Settings) -> dict:
    """`provisiond keys rotate`: a new key first in the key file, every stored secret re-encrypted.

    Keys given in PROVISIOND_SECRET_KEY cannot be rotated here: put a new key first in that
    variable, restart, and call ``reencrypt_all``.
    """
    if os.environ.get(KEY_ENV):
        raise ConfigError(f"the secret keys come from {KEY_ENV}: put a new key first there "
                          "(comma-separated, newest first) instead of rotating the key file")
    path = Path(settings.secret_key_file)
    check_all(Vault.from_settings(settings))  # refuse before anything changes
    rotate_key_file(path)
    counts = reencrypt_all(Vault.from_settings(settings))
    return {"key_file": str(path), "keys": len(path.read_text().split()), **counts}
