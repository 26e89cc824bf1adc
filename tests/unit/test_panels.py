"""The panel registry: bundled cpanel manifest, drop-in folders, broken folders, credentials."""

from __future__ import annotations

import shutil

import pytest
import yaml

from provisiond import panels
from provisiond.config import bundled_dir
from provisiond.crypto import MASK
from provisiond.errors import PanelError, ValidationError
from provisiond.panels import Field

BUNDLED = bundled_dir("playbooks")
CPANEL = panels.load_panel(BUNDLED / "cpanel")


def copy_cpanel(base, panel_id, **changes):
    """A copy of the bundled cpanel folder as ``base/panel_id`` with top-level manifest changes."""
    folder = base / panel_id
    shutil.copytree(BUNDLED / "cpanel", folder)
    manifest = yaml.safe_load((folder / "panel.yaml").read_text())
    manifest.update(id=panel_id, **changes)
    (folder / "panel.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def test_bundled_cpanel_manifest():
    assert CPANEL.id == "cpanel" and CPANEL.connection == "local" and CPANEL.default_port == 2087
    assert set(CPANEL.actions) == set(panels.LIFECYCLE_ACTIONS) and len(CPANEL.actions) == 7
    for action in CPANEL.actions:
        assert CPANEL.playbook_path(action).is_file()
    assert [f.name for f in CPANEL.credentials] == ["username", "api_token", "scheme", "verify_tls"]
    assert CPANEL.secret_fields == ("api_token",)
    assert [f.name for f in CPANEL.package_fields] == ["quota", "bwlimit"]


@pytest.fixture
def bundled(tmp_path):
    """A stand-in for the bundled folder holding only cpanel (others are added over time)."""
    shutil.copytree(BUNDLED / "cpanel", tmp_path / "bundled" / "cpanel")
    return tmp_path / "bundled"


@pytest.fixture
def extra(tmp_path):
    (tmp_path / "extra").mkdir()
    return tmp_path / "extra"


def test_discover_finds_a_dropped_in_copy_and_the_bundled_panel(extra):
    copy_cpanel(extra, "cpanel2", name="Second cPanel")
    registry = panels.discover([extra, BUNDLED])
    assert "cpanel" not in registry.problems and "cpanel2" not in registry.problems
    assert {"cpanel", "cpanel2"} <= set(registry.panels)
    assert registry.get("cpanel2").path == extra / "cpanel2"
    assert registry.get("cpanel2").name == "Second cPanel"
    assert registry.get("cpanel").path == BUNDLED / "cpanel"


def test_folder_in_an_earlier_dir_overrides_the_bundled_one(extra):
    copy_cpanel(extra, "cpanel", name="Our cPanel", actions=["create", "test_connection"])
    registry = panels.discover([extra, BUNDLED])
    panel = registry.get("cpanel")
    assert (panel.path, panel.name, panel.actions) == (extra / "cpanel", "Our cPanel",
                                                       ("create", "test_connection"))
    with pytest.raises(PanelError, match="does not support suspend"):
        panel.require("suspend")


def test_missing_dirs_and_folders_without_manifest_are_skipped(extra, bundled):
    (extra / "notes").mkdir()
    (extra / "README").write_text("x")
    registry = panels.discover([extra / "absent", extra, bundled])
    assert set(registry.panels) == {"cpanel"} and registry.problems == {}


def edit(manifest_changes=None, remove_file=None, raw=None):
    def apply(folder):
        if raw is not None:
            (folder / "panel.yaml").write_text(raw)
        if manifest_changes:
            manifest = yaml.safe_load((folder / "panel.yaml").read_text())
            manifest_changes(manifest)
            (folder / "panel.yaml").write_text(yaml.safe_dump(manifest))
        if remove_file:
            (folder / remove_file).unlink()
    return apply


BROKEN = [
    (edit(raw="id: broken\nactions: [create\n"), "cannot be read as YAML"),
    (edit(raw="- just\n- a list\n"), "expected a mapping at the top"),
    (edit(lambda m: m["credentials"]["api_token"].update(secrett=True)),
     "credentials.api_token: unknown key 'secrett'"),
    (edit(lambda m: m["package"]["quota"].update(minimum=0)), "package.quota: unknown key 'minimum'"),
    (edit(lambda m: m["username"].update(maxlen=8)), "username: unknown key 'maxlen'"),
    (edit(lambda m: m["password"].update(lenght=8)), "password: unknown key 'lenght'"),
    (edit(lambda m: m.update(id="other")), "id: 'other' must equal the folder name 'broken'"),
    (edit(remove_file="suspend.yml"), "actions: suspend is declared but suspend.yml is missing"),
    (edit(lambda m: m.update(actions=[])), "actions: must list at least one action"),
    (edit(lambda m: m["username"].update(pattern="^[a-z(+$")), "username.pattern: not a valid regular"),
    (edit(lambda m: m["credentials"]["username"].update(pattern="^[a-z(+$")),
     "credentials.username.pattern: not a valid regular"),
    (edit(lambda m: m["credentials"]["verify_tls"].update(type="boolean")),
     "credentials.verify_tls.type: must be one of"),
    (edit(lambda m: m.update(connection="telnet")), "connection: must be local or ssh"),
]


@pytest.mark.parametrize("breakage, says", BROKEN)
def test_a_broken_folder_is_reported_with_file_and_field_and_the_others_load(extra, bundled, breakage,
                                                                             says):
    breakage(copy_cpanel(extra, "broken"))
    copy_cpanel(extra, "cpanel2")
    registry = panels.discover([extra, bundled])
    assert set(registry.panels) == {"cpanel", "cpanel2"}
    assert list(registry.problems) == ["broken"]
    problem = registry.problems["broken"]
    assert str(extra / "broken" / "panel.yaml") in problem
    assert says in problem
    with pytest.raises(PanelError, match="panel broken is broken"):
        registry.get("broken")


def test_unknown_panel_is_a_validation_error_listing_the_known(bundled):
    with pytest.raises(ValidationError, match=r"unknown panel 'plesk9' \(known: cpanel\)") as err:
        panels.discover([bundled]).get("plesk9")
    assert err.value.field == "panel"


STORED = {"username": "reseller", "api_token": "old-token", "scheme": "http", "verify_tls": False}


@pytest.mark.parametrize("given, stored, expected", [
    ({"api_token": "t0k"}, None,
     {"username": "root", "api_token": "t0k", "scheme": "https", "verify_tls": True}),
    ({"api_token": "t0k", "verify_tls": "no", "scheme": "http"}, None,
     {"username": "root", "api_token": "t0k", "scheme": "http", "verify_tls": False}),
    ({"api_token": "t0k", "verify_tls": "1"}, None,
     {"username": "root", "api_token": "t0k", "scheme": "https", "verify_tls": True}),
    ({"api_token": ""}, STORED, STORED),                       # blank keeps the stored secret
    ({"api_token": MASK}, STORED, STORED),                     # an echoed mask too
    ({}, STORED, STORED),
    ({"api_token": "new-token"}, STORED, {**STORED, "api_token": "new-token"}),
    ({"scheme": "https", "api_token": MASK}, STORED, {**STORED, "scheme": "https"}),
    ({"verify_tls": True, "api_token": None}, STORED, {**STORED, "verify_tls": True}),
])
def test_check_credentials(given, stored, expected):
    assert CPANEL.check_credentials(given, stored) == expected


@pytest.mark.parametrize("given, stored, field, says", [
    ({}, None, "credential.api_token", "is required"),
    ({"api_token": ""}, None, "credential.api_token", "is required"),
    ({"api_token": ""}, {"username": "root"}, "credential.api_token", "is required"),
    ({"api_token": "t", "apitoken": "t"}, None, "credential.apitoken", "no such field"),
    ({"api_token": "t", "verify_tls": "maybe"}, None, "credential.verify_tls", "true or false"),
    ({"api_token": "t", "scheme": "ftp"}, None, "credential.scheme", "one of https, http"),
    ({"api_token": "t", "username": "Root!"}, None, "credential.username", "does not accept"),
    ({"scheme": "ftp"}, STORED, "credential.scheme", "one of"),
])
def test_check_credentials_refuses_naming_the_field(given, stored, field, says):
    with pytest.raises(ValidationError) as err:
        CPANEL.check_credentials(given, stored)
    assert err.value.field == field and says in err.value.message


@pytest.mark.parametrize("given, expected", [
    ({}, {}),
    ({"quota": "2048"}, {"quota": 2048}),
    ({"quota": 0, "bwlimit": "10"}, {"quota": 0, "bwlimit": 10}),
])
def test_check_package_config(given, expected):
    assert CPANEL.check_package_config(given) == expected


@pytest.mark.parametrize("given, field, says", [
    ({"quota": -1}, "config.quota", "at least 0"),
    ({"quota": "lots"}, "config.quota", "whole number"),
    ({"bwlimit": "1.5"}, "config.bwlimit", "whole number"),
    ({"disk": 1}, "config.disk", "no such package field"),
])
def test_check_package_config_refuses_naming_the_field(given, field, says):
    with pytest.raises(ValidationError) as err:
        CPANEL.check_package_config(given)
    assert err.value.field == field and says in err.value.message


@pytest.mark.parametrize("field, value, expected", [
    (Field("port", type="int", min=1, max=65535), "2087", 2087),
    (Field("port", type="int", min=1, max=65535), "0", "credential.port: must be at least 1"),
    (Field("port", type="int", min=1, max=65535), "70000", "credential.port: must be at most 65535"),
    (Field("port", type="int"), "x", "credential.port: expected a whole number"),
    (Field("ssl", type="bool"), "off", False),
    (Field("ssl", type="bool"), "TRUE", True),
    (Field("ssl", type="bool"), "2", "credential.ssl: expected true or false"),
    (Field("mode", choices=("a", "b")), "c", "credential.mode: must be one of a, b"),
])
def test_field_coercion(field, value, expected):
    if isinstance(expected, str) and expected.startswith("credential."):
        with pytest.raises(ValidationError) as err:
            field.coerce("credential", value)
        assert str(err.value).startswith(expected)
    else:
        assert field.coerce("credential", value) == expected
