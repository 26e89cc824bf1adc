"""Checks for what customers and billing systems send: domains, emails, references.

Each refuses with a ValidationError naming the field; what passes is plain text that can only
travel as a variable (never as template or shell code).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import unicodedata

import idna

from provisiond.errors import ValidationError

LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$")
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,99}$")


def domain(value: str) -> str:
    """A domain name, returned in its ASCII form (the A-label, e.g. ``xn--fa-hia.de``).

    Internationalised names are checked and converted with IDNA 2008 (UTS 46 mapping,
    non-transitional, the ``idna`` package): ``faß.de`` is ``xn--fa-hia.de``, never
    ``fass.de`` as Python's IDNA 2003 codec makes it. The A-label is what is stored, shown
    and sent to panels, consistently. Invisible characters (zero-width space and joiners, soft
    hyphen, variation selectors), which would silently vanish from the name, are refused, and
    so is an ``xn--`` label that is not valid punycode.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("domain", "is required")
    if value != value.strip() or any(c.isspace() for c in value):
        raise ValidationError("domain", f"{value!r} contains spaces")
    if value.endswith("."):
        raise ValidationError("domain", f"{value!r} ends with a dot; give the name without it")
    if len(value) > 253:
        raise ValidationError("domain", "must be at most 253 characters")
    invisible = next((c for c in value if _invisible(c)), None)
    if invisible is not None:
        raise ValidationError("domain", f"{value!r} contains an invisible character (U+{ord(invisible):04X})")
    try:
        ascii_name = idna.encode(value, uts46=True, std3_rules=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise ValidationError("domain", f"{value!r} is not a valid domain name (IDNA 2008)") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(LABEL.match(x) for x in labels):
        raise ValidationError("domain", f"{value!r} is not a valid domain name "
                              "(letters, digits and hyphens in dot-separated labels of 1-63)")
    if labels[-1].isdigit():
        raise ValidationError("domain", f"{value!r} is an address, not a domain name")
    return ascii_name


def _invisible(char: str) -> bool:
    """A format character, or one UTS 46 maps to nothing (it would vanish from the name)."""
    if char.isascii():
        return False
    if unicodedata.category(char) in ("Cf", "Cc"):
        return True
    try:
        return idna.uts46_remap(char, std3_rules=False) == ""
    except idna.IDNAError:  # disallowed: refused by the IDNA check that follows
        return False


def host(value: str) -> str:
    """A server's host: a hostname (ASCII labels) or an IP literal, nothing else.

    It reaches SSH and URLs, so anything that could be read as an option (a leading '-'), a
    user (``@``), a path, a second line or a port is refused. Returned as given.
    """
    if not isinstance(value, str) or not value:
        raise ValidationError("host", "is required")
    if "%" not in value:  # an IPv6 zone id would carry any text
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(value)
            return value
    labels = value.lower().split(".")
    if (len(value) > 253 or not value.isascii() or not all(LABEL.fullmatch(x) for x in labels)
            or labels[-1].isdigit()):
        raise ValidationError("host", f"{value!r} is not a hostname or an IP address "
                              "(letters, digits and hyphens in dot-separated labels of 1-63)")
    return value


def email(value: str) -> str:
    if isinstance(value, str) and len(value) > 254:
        raise ValidationError("email", "must be at most 254 characters")
    if not isinstance(value, str) or not EMAIL.fullmatch(value):
        raise ValidationError("email", f"{value!r} is not a valid email address")
    return value


def customer_name(value: str) -> str:
    """The customer's name as the order gives it ("Jane Doe"), without surrounding spaces:
    1-191 characters (what a utf8mb4 index holds on MariaDB panels), no control characters
    (a name travels to panels and into mails as one line)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("name", "must not be empty")
    value = value.strip()
    if len(value) > 191:
        raise ValidationError("name", "must be at most 191 characters")
    control = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        raise ValidationError("name", f"{value!r} contains a control character (U+{ord(control):04X})")
    return value


def ref(value: str) -> str:
    if not isinstance(value, str) or not REF.fullmatch(value):
        raise ValidationError("ref", f"{value!r} must be 1-100 letters, digits, '.', '_', ':' or '-'")
    if value.startswith("id:"):  # the CLI writes a service id so; no reference may look like one
        raise ValidationError("ref", f"{value!r} must not start with 'id:'")
    return value


def package(value: str) -> str:
    if not isinstance(value, str) or not PACKAGE.fullmatch(value):
        raise ValidationError("package", f"{value!r} must be 1-100 letters, digits, spaces, '.', '_', '+' or '-'")
    return value
