"""Usernames and passwords under the cPanel rules read from the bundled panel.yaml."""

from __future__ import annotations

import dataclasses
import re
import string

import pytest

from provisiond import accounts
from provisiond.config import bundled_dir
from provisiond.errors import ValidationError
from provisiond.panels import load_panel

CPANEL = load_panel(bundled_dir("playbooks") / "cpanel")
RULES = CPANEL.username
PASSWORD = CPANEL.password


def test_rules_come_from_the_manifest():
    assert (RULES.max_length, RULES.generate_length, PASSWORD.length) == (16, 8, 20)
    assert "test" in RULES.forbidden_prefixes and "assword" in RULES.forbidden_suffixes
    assert {"root", "admin", "whm"} <= RULES.reserved


@pytest.mark.parametrize("domain, taken, expected", [
    ("shop.example.com", set(), "shop"),
    ("example-shop.co.uk", set(), "examples"),           # hyphen dropped, cut to 8
    ("Example.COM", set(), "example"),                    # lowercased
    ("xn--bcher-kva.de", set(), "xnbcherk"),              # punycode form of bücher.de
    ("123shop.com", set(), "shop"),                       # leading digits dropped
    ("testshop.com", set(), "shop"),                      # forbidden prefix dropped
    ("testtestshop.com", set(), "shop"),
    ("test1shop.com", set(), "shop"),                     # digits left after the prefix too
    ("1test2shop.com", set(), "shop"),
    ("testtest.org", set(), "site"),                      # nothing left: a fallback
    ("123.example.com", set(), "site"),
    ("admin.example.com", set(), "admin1"),               # reserved: suffixed
    ("www.example.com", set(), "example"),                # the www label names no site
    ("www.io", set(), "www1"),                             # reserved "www" gets a suffix
    ("xassword.com", set(), "xasswor1"),                  # forbidden suffix: suffixed
    ("examples.com", {"examples"}, "example1"),           # collision keeps 8 characters
    ("examples.com", {"examples", "example1", "example2"}, "example3"),
    ("shop.com", {"shop"}, "shop1"),
    ("shop.com", {"shop"} | {f"shop{n}" for n in range(1, 10)}, "shop10"),
    ("examples.com", {"examples"} | {f"example{n}" for n in range(1, 10)}, "exampl10"),
])
def test_generate_username(domain, taken, expected):
    name = accounts.generate_username(domain, RULES, taken)
    assert name == expected
    assert accounts.username_problem(name, RULES) is None
    assert len(name) <= RULES.generate_length


def test_generate_username_gives_up_with_a_field_error_when_every_candidate_is_taken():
    taken = {"shop"} | {f"shop{n}" for n in range(1, 1000)}
    with pytest.raises(ValidationError) as err:
        accounts.generate_username("shop.com", RULES, taken)
    assert err.value.field == "username" and "shop.com" in str(err.value)


def test_generate_username_respects_a_shorter_max_length():
    rules = dataclasses.replace(RULES, max_length=5, generate_length=8)
    assert accounts.generate_username("examples.com", rules, {"examp"}) == "exam1"


@pytest.mark.parametrize("username", ["shop", "a", "abc123", "x" * 16, "mypasswordx", "admins"])
def test_valid_usernames_pass(username):
    assert accounts.validate_username(username, RULES) == username


@pytest.mark.parametrize("username, says", [
    ("", "1 to 16 characters"),
    ("x" * 17, "1 to 16 characters"),
    ("Shop", "lowercase"),
    ("1shop", "must match"),
    ("shop-x", "must match"),
    ("shop_x", "must match"),
    ("shop;id", "must match"),
    ("shop\n", "must match"),
    ("test", "must not start with 'test'"),
    ("testshop", "must not start with 'test'"),
    ("mypassword", "must not end with 'assword'"),
    ("root", "reserved"),
    ("cpanel", "reserved"),
    ("nobody", "reserved"),
])
def test_invalid_usernames_are_refused_naming_the_field(username, says):
    err = refusal(accounts.validate_username, username, RULES)
    assert err.field == "username"
    assert says in err.message
    assert str(err).startswith("username: ")


def refusal(check, value, rules) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        check(value, rules)
    return err.value


@pytest.mark.parametrize("length", [PASSWORD.length, 8, 32])
def test_generated_password_has_every_class_and_the_configured_length(length):
    rules = dataclasses.replace(PASSWORD, length=length)
    for _ in range(20):
        password = accounts.generate_password(rules)
        assert len(password) == length
        for chars in (string.ascii_lowercase, string.ascii_uppercase, string.digits, rules.symbols):
            assert any(c in chars for c in password), (password, chars)
        assert re.fullmatch(f"[A-Za-z0-9{re.escape(rules.symbols)}]+", password)
        assert password[0].isalpha()


def test_generated_passwords_differ_between_calls():
    passwords = {accounts.generate_password(PASSWORD) for _ in range(50)}
    assert len(passwords) == 50


def test_password_without_symbols_uses_three_classes():
    password = accounts.generate_password(dataclasses.replace(PASSWORD, symbols=""))
    assert password.isalnum() and len(password) == PASSWORD.length


@pytest.mark.parametrize("password", ["Shop2026-spring", "aB3" + "x" * 7, "Z9z" + "!" * 125, "Wh@tEver#12[]"])
def test_a_chosen_password_within_the_panels_rules_passes(password):
    assert accounts.check_password(password, PASSWORD) == password


@pytest.mark.parametrize("password, says", [
    ("Short1a", "must be 10 to 128 characters"),
    ("Aa1" + "x" * 126, "must be 10 to 128 characters"),
    ("alllowercase1", "a lowercase letter, an uppercase letter and a digit"),
    ("NoDigitsHere!", "a lowercase letter, an uppercase letter and a digit"),
    ("Has space 123", "may only contain letters, digits and"),
    ("Quote'Inside12", "may only contain letters, digits and"),
    ("{{ lookup }}Aa1", "may only contain letters, digits and"),
    ("Umlaut-ÄÖÜ-ok1", "may only contain letters, digits and"),
    ("Line1\nBreakAa", "may only contain letters, digits and"),
])
def test_a_chosen_password_breaking_the_rules_is_refused_without_echoing_it(password, says):
    refused = refusal(accounts.check_password, password, PASSWORD)
    assert refused.field == "password" and says in refused.message
    assert password not in str(refused)


def test_every_generated_password_passes_the_check_of_chosen_ones():
    for _ in range(50):
        accounts.check_password(accounts.generate_password(PASSWORD), PASSWORD)
