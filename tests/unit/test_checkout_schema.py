"""Checkout fields: panel.yaml's ``checkout:`` block, a product's own fields, an order's values."""

from __future__ import annotations

import shutil

import pytest
import yaml

from provisiond import checkout, panelcheck, panels
from provisiond.config import bundled_dir
from provisiond.errors import PanelError, ValidationError
from provisiond.models import Product

BUNDLED = bundled_dir("playbooks")
PHP = {"php_version": {"label": "PHP version", "choices": ["8.2", "8.3"], "default": "8.3"},
       "mailbox": {"label": "First mailbox", "pattern": "[a-z][a-z0-9.]{0,30}", "required": True},
       "ssh_access": {"type": "bool", "default": False},
       "databases": {"type": "int", "min": 0, "max": 5}}


def panel_with(tmp_path, block) -> panels.Panel:
    folder = tmp_path / "cpanel"
    shutil.copytree(BUNDLED / "cpanel", folder)
    manifest = yaml.safe_load((folder / "panel.yaml").read_text())
    manifest["checkout"] = block
    (folder / "panel.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return panels.load_panel(folder)


def test_a_panel_declares_checkout_fields_in_order(tmp_path):
    panel = panel_with(tmp_path, PHP)
    assert [f.name for f in panel.checkout] == ["php_version", "mailbox", "ssh_access", "databases"]
    assert panel.checkout[0].choices == ("8.2", "8.3") and panel.checkout[1].required


@pytest.mark.parametrize("block, problem", [
    ({"php": {"type": "float"}}, "checkout.php.type: must be one of str, int, bool"),
    ({"php": {"pattern": "[a-"}}, "checkout.php.pattern: not a valid regular expression"),
    ({"php": {"pattern": "a{99999999999}"}}, "checkout.php.pattern: not a valid regular expression"),
    ({"php": {"choice": ["8.2"]}}, "checkout.php: unknown key 'choice'"),
    ({"php": {"choices": ["8.2"], "default": "7.4"}}, "checkout.php.default: must be one of 8.2"),
    ({"php": {"choices": [8.2, 8.3]}}, "checkout.php.choices: 8.2 is not of type str"),
    ({"quota": {"type": "int", "default": "lots"}}, "checkout.quota.default: 'lots' is not of type int"),
    ({"quota": {"type": "int", "max": 5, "default": 9}}, "checkout.quota.default: must be at most 5"),
    ({"quota": {"type": "int", "max": "5"}}, "checkout.quota.max: must be a whole number"),
    ({"php": {"required": "yes"}}, "checkout.php.required: must be true or false"),
    ({"key": {"secret": True}}, "checkout.key.secret: a checkout value is shown with its service"),
    ({"username": {}}, "checkout.username: the order takes username itself"),
    ({"PHP-Version": {}}, "checkout.PHP-Version: a checkout field's name is lowercase letters"),
    (["php"], "checkout: expected a mapping of field name to its definition"),
])
def test_panels_check_reports_a_bad_checkout_block(tmp_path, block, problem):
    with pytest.raises(PanelError) as broken:
        panel_with(tmp_path, block)
    assert problem in str(broken.value)
    [report] = panelcheck.check(panels.discover([tmp_path]), "cpanel")
    assert not report.ok and problem in report.problems[0]


def product(**own) -> Product:
    return Product(name="starter", panel="cpanel",
                   checkout=checkout.product_spec(panels.load_panel(BUNDLED / "cpanel"), own))


@pytest.mark.parametrize("given, field, message", [
    ({}, "fields.mailbox", "is required"),
    ({"mailbox": ""}, "fields.mailbox", "is required"),
    ({"mailbox": "info", "": ""}, "fields.", "product starter has no such checkout field"),
    ({"mailbox": "info", "php": "8.3"}, "fields.php", "product starter has no such checkout field"),
    ({"mailbox": "Info!"}, "fields.mailbox", "has characters or a form this panel does not accept"),
    ({"mailbox": "info", "php_version": "7.4"}, "fields.php_version", "must be one of 8.2, 8.3"),
    ({"mailbox": "info", "databases": "two"}, "fields.databases", "expected a whole number"),
    ({"mailbox": "info", "databases": True}, "fields.databases", "expected a whole number"),
    ({"mailbox": "info", "databases": 9}, "fields.databases", "must be at most 5"),
    ({"mailbox": "info", "ssh_access": "maybe"}, "fields.ssh_access", "expected true or false"),
])
def test_an_order_is_checked_against_the_merged_schema(tmp_path, given, field, message):
    panel = panel_with(tmp_path, {"php_version": PHP["php_version"], "ssh_access": PHP["ssh_access"]})
    own = product(mailbox=PHP["mailbox"], databases=PHP["databases"])
    with pytest.raises(ValidationError) as refused:
        checkout.check_order(panel, own, given)
    assert (refused.value.field, refused.value.message[:len(message)]) == (field, message)


def test_defaults_fill_in_and_text_values_are_coerced(tmp_path):
    panel = panel_with(tmp_path, {"php_version": PHP["php_version"], "ssh_access": PHP["ssh_access"]})
    own = product(mailbox=PHP["mailbox"], databases=PHP["databases"])
    assert checkout.check_order(panel, own, {"mailbox": "info", "databases": "2", "ssh_access": "yes"}) == {
        "php_version": "8.3", "ssh_access": True, "mailbox": "info", "databases": 2}
    assert checkout.check_order(panel, own, {"mailbox": "info", "php_version": ""})["php_version"] == "8.3"


def test_a_free_text_value_is_one_short_line():
    own = product(note={"label": "A note"})
    panel = panels.load_panel(BUNDLED / "cpanel")
    with pytest.raises(ValidationError, match="control character"):
        checkout.check_order(panel, own, {"note": "one\nInjected: header"})
    with pytest.raises(ValidationError, match="at most 255"):
        checkout.check_order(panel, own, {"note": "x" * 256})


def test_a_product_field_named_like_its_panels_is_refused_naming_both(tmp_path):
    panel = panel_with(tmp_path, {"php_version": PHP["php_version"]})
    with pytest.raises(ValidationError) as refused:
        checkout.product_spec(panel, {"php_version": {"choices": ["8.1"]}})
    assert refused.value.field == "checkout.php_version"
    assert "panel cpanel declares a checkout field php_version already" in refused.value.message


def test_a_bad_product_field_is_refused_naming_it():
    with pytest.raises(ValidationError) as refused:
        checkout.product_spec(panels.load_panel(BUNDLED / "cpanel"), {"php": {"type": ["str"]}})
    assert refused.value.field == "checkout.php.type"


def test_the_json_schema_says_what_an_order_must_give(tmp_path):
    panel = panel_with(tmp_path, {"php_version": PHP["php_version"] | {"required": True}})
    own = product(mailbox=PHP["mailbox"], ssh_access=PHP["ssh_access"])
    schema = checkout.json_schema(panel, own)
    assert schema["required"] == ["mailbox"]  # php_version has a default: an order may leave it out
    assert list(schema["properties"]) == ["php_version", "mailbox", "ssh_access"]  # the panel's first
    assert schema["properties"]["mailbox"]["pattern"] == "^(?:[a-z][a-z0-9.]{0,30})$"  # whole, like fullmatch
    assert schema["properties"]["ssh_access"] == {"type": "boolean", "title": "ssh_access", "default": False,
                                                  "x-declared-by": "product"}
    assert schema["properties"]["php_version"]["x-declared-by"] == "panel"


def test_a_throwaway_order_fills_the_panels_required_fields(tmp_path):
    panel = panel_with(tmp_path, {"php_version": {"choices": ["8.2", "8.3"], "required": True},
                                  "mailbox": {"required": True},
                                  "databases": {"type": "int", "min": 1, "required": True},
                                  "shell": {"type": "bool", "required": True}, "theme": {"default": "dark"}})
    assert checkout.sample(panel) == {"php_version": "8.2", "mailbox": "sample", "databases": 1, "shell": False}
    assert checkout.check_order(panel, Product(name="try", checkout=[]), checkout.sample(panel))["theme"] == "dark"
