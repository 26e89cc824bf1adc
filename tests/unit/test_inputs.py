"""What customers and billing systems send: domains, emails, references, package names."""

from __future__ import annotations

import re

import pytest

from provisiond import inputs
from provisiond.errors import ValidationError

LABEL63 = "a" * 63
NAME_253 = ".".join([LABEL63] * 3 + ["a" * 61])
NAME_254 = ".".join([LABEL63] * 3 + ["a" * 62])


@pytest.mark.parametrize("given, expected", [
    ("example.com", "example.com"),
    ("Shop.Example.COM", "shop.example.com"),
    ("bücher.de", "xn--bcher-kva.de"),
    ("BÜCHER.de", "xn--bcher-kva.de"),
    ("münchen.example.org", "xn--mnchen-3ya.example.org"),
    ("xn--bcher-kva.de", "xn--bcher-kva.de"),
    ("my-shop.co.uk", "my-shop.co.uk"),
    ("123.com", "123.com"),
    (f"{LABEL63}.com", f"{LABEL63}.com"),
    (NAME_253, NAME_253),
])
def test_domain_accepted_in_ascii_form(given, expected):
    assert inputs.domain(given) == expected


@pytest.mark.parametrize("given", [
    "", "   ", None, 42,
    f"{'a' * 64}.com",                 # label over 63
    NAME_254,                          # total over 253
    "example.com.",                    # trailing dot
    "exa mple.com", " example.com", "example.com ", "example.com\n", "example.com\t",
    "a;b.com", "example.com;rm -rf /", "$(id).com", "`id`.com", "a|b.com", "a&b.com",
    "{{ x }}.com", "{{x}}.com", "{%x%}.com",
    "!!python/object:os.system", "!!python/object/apply:os.system.com",
    "192.168.1.10", "10.0.0.1", "::1", "[::1]",
    "localhost", "com",
    "-example.com", "example-.com", "a..com", ".example.com",
    "exa_mple.com", "example.com/path", "user@example.com", "example.com:80",
])
def test_domain_refused_naming_the_field(given):
    with pytest.raises(ValidationError) as err:
        inputs.domain(given)
    assert err.value.field == "domain"
    assert str(err.value).startswith("domain: ")


@pytest.mark.parametrize("given, says", [
    (f"{'a' * 64}.com", "not a valid domain"),
    ("example.com.", "dot"),
    ("exa mple.com", "spaces"),
    ("192.168.1.10", "address"),
    ("", "required"),
])
def test_domain_refusal_says_why(given, says):
    with pytest.raises(ValidationError, match=says):
        inputs.domain(given)


@pytest.mark.parametrize("given", ["me@shop.example.com", "first.last+tag@example.co.uk",
                                   "a_b-c%d@x-y.io"])
def test_email_accepted(given):
    assert inputs.email(given) == given


@pytest.mark.parametrize("given", [
    "", None, "me", "me@", "@example.com", "me@example", "me@example.c", "me @example.com",
    "me@example.com\n", "me@example.com\r\nBcc: x@evil.com", "me@exa;mple.com", "$(id)@example.com",
    "{{ x }}@example.com", "me@example.com ", f"{'a' * 65}@example.com",
])
def test_email_refused(given):
    with pytest.raises(ValidationError) as err:
        inputs.email(given)
    assert err.value.field == "email"


@pytest.mark.parametrize("given", ["INV-1001", "a", "whmcs:42", "inv_2024.03", "A" * 100])
def test_ref_accepted(given):
    assert inputs.ref(given) == given


@pytest.mark.parametrize("given", ["", None, 7, "-INV", ".x", "INV 1", "INV-1\n", "INV;1", "A" * 101,
                                   "{{x}}", "$(id)", "a/b"])
def test_ref_refused(given):
    with pytest.raises(ValidationError) as err:
        inputs.ref(given)
    assert err.value.field == "ref"


@pytest.mark.parametrize("given", ["basic", "Gold Plan", "reseller_pro+", "v1.2-x", "p" * 100])
def test_package_accepted(given):
    assert inputs.package(given) == given


@pytest.mark.parametrize("given", ["", None, " basic", "-basic", "basic\n", "basic;id", "$(id)",
                                   "{{ x }}", "a/b", "p" * 101])
def test_package_refused(given):
    with pytest.raises(ValidationError) as err:
        inputs.package(given)
    assert err.value.field == "package"


@pytest.mark.parametrize("given, expected", [
    ("faß.de", "xn--fa-hia.de"),        # IDNA 2008: ß stays ß, never "fass.de"
    ("ß.de", "xn--zca.de"),
    ("FAß.de", "xn--fa-hia.de"),
    ("xn--fa-hia.de", "xn--fa-hia.de"),  # the stored A-label is accepted as it is
    ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ("ｓｈｏｐ.example.com", "shop.example.com"),  # full-width letters are mapped (UTS 46)
])
def test_domain_follows_idna_2008_non_transitional(given, expected):
    assert inputs.domain(given) == expected


@pytest.mark.parametrize("given, says", [
    ("exa\u200bmple.com", "invisible character (U+200B)"),   # zero-width space
    ("exa\u200cmple.com", "invisible character (U+200C)"),   # zero-width non-joiner
    ("exa\u200dmple.com", "invisible character (U+200D)"),   # zero-width joiner
    ("exa\u00admple.com", "invisible character (U+00AD)"),   # soft hyphen
    ("exa\ufe0fmple.com", "invisible character (U+FE0F)"),   # variation selector
    ("\ufeffexample.com", "invisible character (U+FEFF)"),
    ("xn--zz.de", "not a valid domain name"),                 # invalid punycode
    ("xn--.de", "not a valid domain name"),
    ("xn--fa-hia-.de", "not a valid domain name"),
    ("a" * 300 + ".com", "at most 253"),
])
def test_domain_refuses_what_would_vanish_or_cannot_decode(given, says):
    with pytest.raises(ValidationError, match=re.escape(says)) as err:
        inputs.domain(given)
    assert err.value.field == "domain"


@pytest.mark.parametrize("given", ["whm1.example.net", "WHM1.Example.NET", "localhost", "web-2",
                                   "127.0.0.1", "10.0.0.5", "::1", "2001:db8::7", "xn--bcher-kva.example"])
def test_host_accepts_a_hostname_or_an_ip_literal(given):
    assert inputs.host(given) == given


@pytest.mark.parametrize("given", [
    "evil.x@127.0.0.1", "a./../../../tmp/x", "whm.example.net\n", "a\nb", "a.-oProxyCommand=x",
    "-oProxyCommand=x", "-whm.example.net", "whm.example.net.", "whm.example.net:2087", "[::1]",
    "fe80::1%$(id)", "127.1", "1.2.3.4.5", "whm example.net", "bücher.example", "", None, "a" * 254,
    "http://whm.example.net", "whm_1.example.net",
])
def test_host_refuses_anything_but_a_hostname_or_an_ip_literal(given):
    with pytest.raises(ValidationError) as err:
        inputs.host(given)
    assert err.value.field == "host"


def test_an_email_longer_than_the_column_is_refused_at_the_door():
    with pytest.raises(ValidationError) as err:
        inputs.email("a" * 60 + "@" + "b" * 236 + ".com")   # 300 characters, each part within the regex
    assert str(err.value) == "email: must be at most 254 characters"
