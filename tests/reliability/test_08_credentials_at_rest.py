"""Guarantee 8: credentials at rest.

Keys come from the key file or PROVISIOND_SECRET_KEY. `keys.rotate_all` (what `provisiond keys
rotate` runs) puts a new key first and re-encrypts every stored secret with it in one
transaction; old keys still read, and a daemon started before the rotation carries on. A
tampered value fails the run closed, before any playbook runs, with an error naming the value;
a rotation meeting one changes nothing. A blank or masked value on update keeps the secret.
"""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from provisiond import catalog, keys, lifecycle
from provisiond.catalog import ENCRYPTED
from provisiond.crypto import KEY_ENV, MASK, Vault
from provisiond.errors import ConfigError, CryptoError
from provisiond.models import Job, ProvisioningLog, Server, Service
from provisiond.worker import Worker
from tests.conftest import WHM_TOKEN


def tamper(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]


def stored_secrets() -> dict[str, str]:
    """Every stored encrypted value, by what it is."""
    found = {}
    for server in Server.select():
        found.update({f"server {server.name} {k}": v[len(ENCRYPTED):] for k, v in server.credentials.items()
                      if isinstance(v, str) and v.startswith(ENCRYPTED)})
    found.update({f"service {s.ref}": s.password for s in Service.select() if s.password})
    found.update({f"job {j.id}": j.secret_params for j in Job.select() if j.secret_params})
    return found


@pytest.fixture
def secrets_everywhere(shop, registry, vault):
    """A server credential, two service passwords and a change_password job's parameters."""
    service, _ = lifecycle.order(registry, vault, product="starter", domain="rest.example.com",
                                 email="me@rest.example.com", ref="INV-REST")
    lifecycle.order(registry, vault, product="starter", domain="rest2.example.com",
                    email="me@rest2.example.com", ref="INV-REST2")
    Service.update(status="active").where(Service.id == service.id).execute()
    Job.update(status="succeeded").where(Job.service == service.id).execute()
    lifecycle.request(registry, vault, "INV-REST", "change_password")
    return service


def test_keys_come_from_the_key_file_or_the_environment(settings, monkeypatch):
    from_file = Vault.from_settings(settings)
    token = from_file.encrypt("s3cret")
    key = settings.secret_key_file.read_text().split()[0]
    monkeypatch.setenv(KEY_ENV, f"{Fernet.generate_key().decode()},{key}")  # newest first
    from_env = Vault.from_settings(settings)
    assert from_env.decrypt(token) == "s3cret"                     # an older key still reads
    with pytest.raises(CryptoError):
        from_file.decrypt(from_env.encrypt("new"))                 # the newest key encrypts
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    with pytest.raises(CryptoError, match="unknown key"):
        Vault.from_settings(settings).decrypt(token)
    with pytest.raises(ConfigError, match=KEY_ENV):
        keys.rotate_all(settings)  # env keys are rotated in the environment, not in a file


def test_rotation_reencrypts_every_secret_and_a_running_daemon_carries_on(
        secrets_everywhere, settings, registry, vault, whm):
    before = stored_secrets()
    plain = {what: vault.decrypt(token) for what, token in before.items()}
    assert len(before) == 4
    running_daemon = Worker(settings, Vault.from_settings(settings), owner="started-before-rotation")
    old_keys = settings.secret_key_file.read_text().split()

    counts = keys.rotate_all(settings)

    new_keys = settings.secret_key_file.read_text().split()
    assert new_keys[1:] == old_keys and len(new_keys) == 2 and counts["keys"] == 2
    assert (counts["server credentials"], counts["service passwords"], counts["job parameters"]) == (1, 2, 1)
    after = stored_secrets()
    only_new = Vault(new_keys[:1])
    for what, token in after.items():
        assert token != before[what]
        assert only_new.decrypt(token) == plain[what]              # re-encrypted with the new key
        assert Vault.from_settings(settings).decrypt(before[what]) == plain[what]  # old still read
    assert running_daemon.vault.decrypt(after["service INV-REST2"]) == plain["service INV-REST2"]

    job = Job.get((Job.action == "create") & (Job.status == "queued"))
    try:
        running_daemon.tick(wait=True)  # its vault was read before the rotation
    finally:
        running_daemon.shutdown()
    assert Job.get_by_id(job.id).status == "succeeded", Job.get_by_id(job.id).last_error
    assert whm.accounts["rest2"].password == plain["service INV-REST2"]


def test_a_rotation_meeting_a_tampered_value_changes_nothing(secrets_everywhere, settings):
    service = secrets_everywhere
    Service.update(password=tamper(service.password)).where(Service.id == service.id).execute()
    before, key_file = stored_secrets(), settings.secret_key_file.read_text()
    with pytest.raises(CryptoError, match="password of service INV-REST cannot be decrypted"):
        keys.rotate_all(settings)
    assert stored_secrets() == before and settings.secret_key_file.read_text() == key_file


@pytest.mark.parametrize("target", ["server credential", "service password", "job parameters"])
def test_a_tampered_value_fails_the_run_closed(target, shop, registry, vault, settings, whm):
    server, _ = shop
    service, job = lifecycle.order(registry, vault, product="starter", domain="closed.example.com",
                                   email="me@closed.example.com", ref="INV-CLOSED")
    if target == "server credential":
        sealed = dict(server.credentials, api_token=ENCRYPTED + tamper(server.credentials["api_token"][4:]))
        Server.update(credentials=sealed).where(Server.id == server.id).execute()
        expected = f"credential api_token of server {server.name} cannot be decrypted"
    elif target == "service password":
        Service.update(password=tamper(service.password)).where(Service.id == service.id).execute()
        expected = "password of service INV-CLOSED cannot be decrypted"
    else:
        Job.update(status="succeeded").where(Job.id == job.id).execute()
        Service.update(status="active").where(Service.id == service.id).execute()
        job = lifecycle.request(registry, vault, "INV-CLOSED", "change_password")
        Job.update(secret_params=tamper(job.secret_params)).where(Job.id == job.id).execute()
        expected = f"parameters of job {job.id} cannot be decrypted"
    worker = Worker(settings, vault)
    try:
        worker.tick(wait=True)
    finally:
        worker.shutdown()
    failed = Job.get_by_id(job.id)
    assert failed.status == "failed" and expected in failed.last_error
    assert failed.attempts == 1  # failed closed, not retried
    [log] = ProvisioningLog.select().where(ProvisioningLog.job == job.id)
    assert log.status == "failed" and expected in log.message and log.rc is None
    assert log.artifacts_path is None and log.stdout_excerpt is None
    assert whm.requests == []  # no playbook ran


def test_a_blank_or_masked_value_keeps_the_stored_secret(shop, registry, vault):
    server, _ = shop
    for kept in ("", MASK, None):
        server = catalog.update_server_credentials(registry, vault, catalog.server(server.name),
                                                   {"api_token": kept, "scheme": "http"})
        opened = catalog.open_credentials(Server.get_by_id(server.id).credentials, vault, server.name)
        assert opened["api_token"] == WHM_TOKEN, repr(kept)
    catalog.update_server_credentials(registry, vault, server, {"api_token": "a-new-token-123"})
    stored = Server.get_by_id(server.id).credentials
    assert stored["api_token"].startswith(ENCRYPTED) and "a-new-token-123" not in str(stored)
    assert catalog.open_credentials(stored, vault, server.name)["api_token"] == "a-new-token-123"
