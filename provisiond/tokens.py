"""Bearer tokens of the HTTP API.

A token is shown once, when it is created (``provisiond token create NAME``); only its SHA-256
is stored, so a copy of the database gives no way in. A presented token is hashed and looked
up by its hash: the comparison never runs over the secret itself, and the final check is
constant-time. Revoked tokens are refused.

Each token has a scope (``Scope``): ``billing`` may do what a billing system does (orders,
payments, service actions and reads), ``admin`` may also manage the fleet. The table of which
route needs which is in provisiond/api/base.py. New tokens are ``billing`` unless asked: the
usual token goes into a billing system, which runs on a public web server, and a stolen one
should not reach the fleet. Tokens made before scopes existed are ``admin`` (migration 12), as
they could do everything then.

``last_used_at`` is written at most once a minute per token (``LAST_USED_GRANULARITY``), so a
busy billing system does not turn every request into a write.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import hmac
import secrets

import peewee as pw

from provisiond import compiled, inputs
from provisiond.errors import NotFound, ValidationError
from provisiond.models import ApiToken, database, utcnow

PREFIX = "pvd_"  # tells a leaked provisiond token apart in logs and secret scanners
MAX_LENGTH = 256
# last_used_at is written at most this often per token, so busy billing systems do not turn
# every request into a write.
LAST_USED_GRANULARITY = datetime.timedelta(seconds=60)


class Scope(str, enum.Enum):
    BILLING = "billing"
    ADMIN = "admin"


DEFAULT_SCOPE = Scope.BILLING
# What each scope includes: an admin token may do all a billing token may.
INCLUDES = {Scope.BILLING: {Scope.BILLING}, Scope.ADMIN: {Scope.BILLING, Scope.ADMIN}}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_scope(value: str | Scope) -> Scope:
    """``value`` as a Scope, or a ValidationError naming the field."""
    try:
        return Scope(value)
    except ValueError:
        raise ValidationError("scope", f"{value!r} must be one of "
                              f"{', '.join(s.value for s in Scope)}") from None


def create(name: str, scope: str | Scope = DEFAULT_SCOPE) -> str:
    """Make a token named ``name`` with ``scope`` and return it; it cannot be shown again."""
    if not isinstance(name, str) or not inputs.REF.fullmatch(name):
        raise ValidationError("name", f"{name!r} must be 1-100 letters, digits, '.', '_', ':' or '-'")
    chosen = parse_scope(scope)
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with database.atomic():
            if ApiToken.select().where(ApiToken.name == name).exists():
                raise ValidationError("name", f"a token named {name!r} exists already")
            ApiToken.create(name=name, token_hash=_digest(token), scope=chosen.value)
    except pw.IntegrityError:  # created by someone else between the check and the insert
        raise ValidationError("name", f"a token named {name!r} exists already") from None
    return token


FIELDS = [f.name for f in ApiToken._meta.sorted_fields]
BY_HASH = compiled.Statement(lambda digest: ApiToken.select().where(ApiToken.token_hash == digest), "digest")


def verify(token: str | None, now: datetime.datetime | None = None) -> ApiToken | None:
    """The token's row when ``token`` is a valid, unrevoked token, else None."""
    if not token or len(token) > MAX_LENGTH:
        return None
    digest = _digest(token)
    rows = BY_HASH.rows(digest=digest)  # every request of the API asks this: a compiled statement
    found = ApiToken(**dict(zip(FIELDS, rows[0]))) if rows else None
    if found is None or not hmac.compare_digest(found.token_hash, digest) or found.revoked:
        return None
    now = now or utcnow()
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_GRANULARITY:
        ApiToken.update(last_used_at=now).where(ApiToken.id == found.id).execute()
        found.last_used_at = now
    return found


def revoke(name: str) -> ApiToken:
    """Refuse the token named ``name`` from now on (its name stays taken)."""
    found = ApiToken.get_or_none(ApiToken.name == name)
    if found is None:
        raise NotFound(f"token {name} does not exist")
    ApiToken.update(revoked=True).where(ApiToken.id == found.id).execute()
    found.revoked = True
    return found


def allows(token: ApiToken, needed: Scope) -> bool:
    """Whether ``token``'s scope includes ``needed`` (an unknown stored scope includes nothing)."""
    try:
        have = Scope(token.scope)
    except ValueError:
        return False
    return needed in INCLUDES[have]


def token_view(token: ApiToken) -> dict:
    """A token as the CLI and the API list it: never the token nor its hash."""
    return {"name": token.name, "scope": token.scope, "created_at": token.created_at,
            "last_used_at": token.last_used_at, "revoked": token.revoked}


def listing() -> list[dict]:
    """Every token, oldest first, as ``token_view`` shows it."""
    return [token_view(t) for t in ApiToken.select().order_by(ApiToken.id)]
