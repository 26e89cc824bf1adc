"""Secrets at rest (Vault, key file, rotation) and secrets in output (Redactor)."""

from __future__ import annotations

import json
import stat
import types
import urllib.parse

import pytest
from cryptography.fernet import Fernet

from provisiond import crypto
from provisiond.crypto import MASK, Redactor, Vault
from provisiond.errors import CryptoError


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch):
    monkeypatch.delenv(crypto.KEY_ENV, raising=False)


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "home" / "secret.key"
    assert crypto.create_key_file(path) is True
    return path


def vault_of(path):
    return Vault.from_settings(types.SimpleNamespace(secret_key_file=path))


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("value", ["s3cret-token", "", "pässwörd ✓", "x" * 5000])
def test_round_trip(key_file, value):
    vault = vault_of(key_file)
    token = vault.encrypt(value)
    assert value == "" or value not in token
    assert vault.decrypt(token) == value


def test_json_round_trip_and_none(key_file):
    vault = vault_of(key_file)
    assert vault.decrypt_json(vault.encrypt_json({"api_token": "t0k3n", "n": [1, 2]})) == {
        "api_token": "t0k3n", "n": [1, 2]}
    assert vault.decrypt_json(None) is None


def test_key_file_is_0600_and_not_overwritten(key_file):
    assert mode(key_file) == 0o600
    before = key_file.read_text()
    assert crypto.create_key_file(key_file) is False
    assert key_file.read_text() == before


def test_rotation_keeps_old_values_readable_and_rotate_uses_the_newest_key(key_file):
    old_token = vault_of(key_file).encrypt("old-secret")
    crypto.rotate_key_file(key_file)
    assert mode(key_file) == 0o600
    keys = key_file.read_text().split()
    assert len(keys) == 2
    vault = vault_of(key_file)
    assert vault.decrypt(old_token) == "old-secret"
    rotated = vault.rotate(old_token)
    newest_only = Vault([keys[0]])
    assert newest_only.decrypt(rotated) == "old-secret"
    with pytest.raises(CryptoError):
        newest_only.decrypt(old_token)
    assert Vault([keys[0]]).decrypt(vault.encrypt("fresh")) == "fresh"  # new values: newest key


def test_env_key_wins_over_the_file_and_takes_a_list(key_file, monkeypatch):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = Vault([second]).encrypt("from-old-env-key")
    monkeypatch.setenv(crypto.KEY_ENV, f"{first},{second}")
    vault = vault_of(key_file)
    assert vault.decrypt(token) == "from-old-env-key"
    assert Vault([first]).decrypt(vault.encrypt("v")) == "v"


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"),
    lambda t: t[:20] + ("x" if t[20] != "x" else "y") + t[21:],
    lambda t: "not-a-token",
    lambda t: "",
    lambda t: t + "é",
])
def test_tampered_token_raises_a_clear_crypto_error(key_file, tamper):
    vault = vault_of(key_file)
    with pytest.raises(CryptoError, match=r"server whm1 api_token cannot be decrypted \(tampered"):
        vault.decrypt(tamper(vault.encrypt("secret")), what="server whm1 api_token")
    with pytest.raises(CryptoError, match="cannot be decrypted during rotation"):
        vault.rotate(tamper(vault.encrypt("secret")))


def test_value_from_another_key_is_refused(key_file):
    foreign = Vault([Fernet.generate_key().decode()]).encrypt("secret")
    with pytest.raises(CryptoError, match="unknown key"):
        vault_of(key_file).decrypt(foreign)
    with pytest.raises(CryptoError, match="rotation"):
        vault_of(key_file).rotate(foreign)


def test_missing_key_file_tells_to_run_init(tmp_path):
    missing = tmp_path / "nowhere" / "secret.key"
    with pytest.raises(CryptoError, match=r"missing: run `provisiond init`") as err:
        vault_of(missing)
    assert str(missing) in str(err.value)


@pytest.mark.parametrize("keys, says", [([], "provisiond init"), (["", "  "], "provisiond init"),
                                        (["not-a-fernet-key"], "not a valid Fernet key")])
def test_bad_key_configuration(keys, says):
    with pytest.raises(CryptoError, match=says):
        Vault(keys)


SECRET = 'p@ss w/rd&"x+1é'
FORMS = {
    "raw": SECRET,
    "url": urllib.parse.quote(SECRET, safe=""),
    "quote_plus": urllib.parse.quote_plus(SECRET),
    "json": json.dumps(SECRET)[1:-1],
}


def test_the_encoded_forms_really_differ():
    assert len(set(FORMS.values())) == 4


@pytest.mark.parametrize("form", FORMS)
def test_redactor_masks_every_form_in_text(form):
    text = f"POST token={FORMS[form]}&user=bob -> failed"
    assert Redactor([SECRET]).text(text) == f"POST token={MASK}&user=bob -> failed"


def test_redactor_masks_a_secret_inside_a_json_document():
    document = json.dumps({"password": SECRET, "user": "bob"})
    redacted = Redactor([SECRET]).text(document)
    assert json.loads(redacted) == {"password": MASK, "user": "bob"}


def test_redactor_masks_nested_data_keys_and_values():
    redactor = Redactor(["tok3n-AB", SECRET])
    data = {"answer": {"args": ["x", "Bearer tok3n-AB", ("t", FORMS["url"])]},
            "tok3n-AB": 5, "n": 3, "none": None}
    assert redactor.data(data) == {"answer": {"args": ["x", f"Bearer {MASK}", ["t", MASK]]},
                                   MASK: 5, "n": 3, "none": None}


@pytest.mark.parametrize("secret, text, expected", [
    ("abc", "abc abcdef", "abc abcdef"),        # under 4 characters: ignored
    ("", "anything", "anything"),
    (None, "anything", "anything"),
    ("abcd", "abcd abcdef", f"{MASK} {MASK}ef"),
])
def test_redactor_ignores_short_secrets(secret, text, expected):
    assert Redactor([secret]).text(text) == expected


def test_redactor_added_later_and_none_text():
    redactor = Redactor()
    assert redactor.text("hunter22") == "hunter22"
    redactor.add("hunter22")
    assert redactor.text("pw=hunter22") == f"pw={MASK}"
    assert redactor.text(None) is None
