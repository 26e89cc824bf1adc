"""An account's identity on a panel: a username that the panel's rules accept, and a password.

The rules come from the panel's manifest (``username:`` and ``password:`` in panel.yaml).
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import string
from typing import Container

from provisiond.errors import ValidationError
from provisiond.panels import PasswordRules, UsernameRules


STORED_MAX_LENGTH = 64  # the service.username column


def username_problem(username: str, rules: UsernameRules) -> str | None:
    """Why ``username`` breaks the panel's rules, or None when it is acceptable."""
    if len(username) > STORED_MAX_LENGTH:  # whatever a server's own limit says
        return f"must be at most {STORED_MAX_LENGTH} characters"
    if not rules.min_length <= len(username) <= rules.max_length:
        return f"must be {rules.min_length} to {rules.max_length} characters"
    if rules.lowercase and username != username.lower():
        return "must be lowercase"
    if not re.fullmatch(rules.pattern, username):
        return f"must match {rules.pattern}"
    for prefix in rules.forbidden_prefixes:
        if username.startswith(prefix):
            return f"must not start with {prefix!r}"
    for suffix in rules.forbidden_suffixes:
        if username.endswith(suffix):
            return f"must not end with {suffix!r}"
    if username.lower() in rules.reserved:
        return "is reserved on this panel"
    return None


def server_rules(rules: UsernameRules, server_credentials: dict | None) -> UsernameRules:
    """The panel's username rules with one server's own length limit applied, when it has one
    (``username_max_length``: DirectAdmin's is configurable per server)."""
    limit = (server_credentials or {}).get("username_max_length")
    if not limit:
        return rules
    limit = int(limit)
    return dataclasses.replace(rules, max_length=limit, generate_length=min(rules.generate_length, limit))


def validate_username(username: str, rules: UsernameRules) -> str:
    problem = username_problem(username, rules)
    if problem:
        raise ValidationError("username", f"{username!r} {problem}")
    return username


def generate_username(domain: str, rules: UsernameRules, taken: Container[str]) -> str:
    """A username from the domain's first label that the rules accept and ``taken`` lacks.

    ``example-shop.co.uk`` → ``examples``; on collision a counter replaces the tail
    (``example1``, ``example2``, ...), keeping the length within the rules.
    """
    allowed = set(string.ascii_lowercase + string.digits)
    labels = domain.lower().split(".")
    if labels[0] == "www" and len(labels) > 2:  # www.shop.example → shop
        labels = labels[1:]
    stem = "".join(c for c in labels[0] if c in allowed)
    previous = None
    while stem != previous:  # "test1shop": digits can follow a stripped prefix, and vice versa
        previous, stem = stem, stem.lstrip(string.digits)
        for prefix in rules.forbidden_prefixes:
            while prefix and stem.startswith(prefix):
                stem = stem[len(prefix):]
    stem = stem or "site"
    length = max(rules.min_length, min(rules.generate_length, rules.max_length))
    stem = stem[:length]
    if len(stem) < rules.min_length:
        stem = (stem + "site")[:length]
    candidates = [stem] + [stem[:length - len(str(n))] + str(n) for n in range(1, 1000)]
    for candidate in candidates:
        if candidate not in taken and username_problem(candidate, rules) is None:
            return candidate
    raise ValidationError("username", f"no free username could be made from {domain!r}")


def generate_password(rules: PasswordRules) -> str:
    """A random password with lower, upper, digit and symbol characters (panel policies ask)."""
    classes = [string.ascii_lowercase, string.ascii_uppercase, string.digits, rules.symbols]
    classes = [c for c in classes if c]
    alphabet = "".join(classes)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(rules.length))
        if password[0].isalpha() and all(any(ch in c for ch in password) for c in classes):
            return password


def password_problem(password: str, rules: PasswordRules) -> str | None:
    """Why a password a billing system chose breaks the panel's rules, or None.

    The answer never contains the password or any of its characters."""
    if not isinstance(password, str):
        return "must be a string"
    if not rules.min_length <= len(password) <= rules.max_length:
        return f"must be {rules.min_length} to {rules.max_length} characters"
    allowed = set(string.ascii_letters + string.digits + rules.allowed_symbols + rules.symbols)
    if not set(password) <= allowed:
        return f"may only contain letters, digits and {rules.allowed_symbols}"
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
    if not all(any(ch in c for ch in password) for c in classes):
        return "must contain a lowercase letter, an uppercase letter and a digit"
    return None


def check_password(password: str, rules: PasswordRules) -> str:
    """``password`` when the panel's rules accept it; else a ValidationError naming the field."""
    problem = password_problem(password, rules)
    if problem:
        raise ValidationError("password", problem)
    return password
