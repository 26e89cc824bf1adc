"""Checks for what customers and billing systems send: domains, emails, references.

Each refuses with a ValidationError naming the field; what passes is plain text that can only
travel as a variable (never as template or shell code).
"""

from __future__ import annotations

import re

from provisiond.errors import ValidationError

LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$")
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,99}$")


def domain(value: str) -> str:
    """A hostname in its ASCII form: internationalised names are turned into punycode."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("domain", "is required")
    if value != value.strip() or any(c.isspace() for c in value):
        raise ValidationError("domain", f"{value!r} contains spaces")
    if value.endswith("."):
        raise ValidationError("domain", f"{value!r} ends with a dot; give the name without it")
    try:
        ascii_name = value.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValidationError("domain", f"{value!r} is not a valid domain name") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(LABEL.match(x) for x in labels):
        raise ValidationError("domain", f"{value!r} is not a valid domain name "
                              "(letters, digits and hyphens in dot-separated labels of 1-63)")
    if labels[-1].isdigit():
        raise ValidationError("domain", f"{value!r} is an address, not a domain name")
    return ascii_name


def email(value: str) -> str:
    if not isinstance(value, str) or not EMAIL.fullmatch(value):
        raise ValidationError("email", f"{value!r} is not a valid email address")
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
