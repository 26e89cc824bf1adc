"""Sign-in to the console: an admin API token, pasted once, starts a session cookie.

The cookie holds, encrypted and authenticated with the vault's key (Fernet, so the key file's
rotation applies), the token's id, the first characters of its hash, when the session ends and
a random CSRF value. Each request checks the token again: revoking it, or a token that has lost
its admin scope, ends every session it started. The cookie is HttpOnly, SameSite=Strict, Secure
when the console is served over https, and ends after ``SESSION_HOURS`` whatever is done.

Every form that changes something carries the session's CSRF value in a hidden field named
``csrf`` (synchronizer token); a POST without it, or with another, is refused with 403.
"""

from __future__ import annotations

import functools
import hmac
import json
import secrets
import time
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, Request

from provisiond import tokens
from provisiond.api.base import connection
from provisiond.errors import CryptoError
from provisiond.models import ApiToken
from provisiond.tokens import Scope

COOKIE = "provisiond_session"
SESSION_HOURS = 8
HASH_CHARS = 16


class LoginRequired(Exception):
    """No session, or one that ended: the console answers with a redirect to the sign-in page."""

    def __init__(self, next_path: str = "/ui/"):
        self.next_path = next_path


class BadCsrf(Exception):
    """A form that changes something came without the session's CSRF value."""


def start(vault, token: ApiToken, now: float | None = None) -> tuple[str, str]:
    """A new session for ``token``: the cookie's value and its CSRF value."""
    csrf = secrets.token_urlsafe(24)
    payload = {"t": token.id, "h": token.token_hash[:HASH_CHARS], "csrf": csrf,
               "exp": int((now or time.time()) + SESSION_HOURS * 3600)}
    return vault.encrypt(json.dumps(payload)), csrf


def read(vault, cookie: str | None, now: float | None = None) -> tuple[ApiToken, str] | None:
    """The token and CSRF value of a live session, or None (no cookie, tampered, expired,
    token revoked or no longer admin)."""
    payload = opened(vault, cookie, now)
    token = payload and token_of(payload)
    return (token, str(payload.get("csrf", ""))) if token else None


def opened(vault, cookie: str | None, now: float | None = None) -> dict | None:
    """The cookie's payload while it is authentic and unexpired, else None (no database read)."""
    if not cookie or len(cookie) > 4096:
        return None
    try:
        payload = json.loads(vault.decrypt(cookie, "a console session"))
    except (CryptoError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("exp", 0) < (now or time.time()):
        return None
    return payload


def token_of(payload: dict) -> ApiToken | None:
    """The session's token while it is unrevoked, admin and the one the session began with."""
    token = ApiToken.get_or_none(ApiToken.id == payload.get("t"))
    if token is None or token.revoked or not tokens.allows(token, Scope.ADMIN):
        return None
    if not hmac.compare_digest(token.token_hash[:HASH_CHARS], str(payload.get("h", ""))):
        return None
    return token


def set_cookie(response, request: Request, value: str) -> None:
    response.set_cookie(COOKIE, value, max_age=SESSION_HOURS * 3600, path="/ui",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")


def clear_cookie(response) -> None:
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")


class Admin:
    """The signed-in admin of a page: their token and the session's CSRF value.

    The dependency (``current``) reads the cookie alone; the token is checked by the page's
    ``with_admin``, in the connection the page then uses, so a page takes one of the API's
    connections, not one for the check and another for the page. Until then the admin has no
    token: a page that forgot ``with_admin`` fails rather than act unchecked."""

    def __init__(self, payload: dict, next_path: str):
        self.csrf = str(payload.get("csrf", ""))
        self._payload, self._next_path, self._token = payload, next_path, None

    def check(self) -> None:
        """Find the session's token (in this thread's connection), or a redirect to sign in."""
        self._token = token_of(self._payload)
        if self._token is None:
            raise LoginRequired(self._next_path)

    @property
    def token(self) -> ApiToken:
        if self._token is None:
            raise RuntimeError("the session's token was not checked: the page needs session.with_admin")
        return self._token

    @property
    def actor(self) -> str:
        return f"ui:{self.token.name}"


def current(request: Request) -> Admin:
    """The dependency of every page but the sign-in: the admin whose session cookie this is
    (checked against the database by ``with_admin``), or a redirect to sign in."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    next_path = path if request.method == "GET" else "/ui/"
    payload = opened(request.app.state.context.vault, request.cookies.get(COOKIE))
    if payload is None:
        raise LoginRequired(next_path)
    return Admin(payload, next_path)


def checked(request: Request, csrf: Annotated[str, Form()] = "") -> Admin:
    """For a POST: the admin, when the form carries the session's CSRF value; else 403."""
    admin = current(request)
    if not csrf or not hmac.compare_digest(csrf, admin.csrf):
        raise BadCsrf()
    return admin


def with_admin(func):
    """Run a page inside this thread's connection (as ``api.base.with_db`` does), its admin's
    session checked first in that same connection: a revoked token, or one no longer admin,
    is sent to sign in before the page reads or changes anything."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with connection():
            for value in kwargs.values():
                if isinstance(value, Admin):
                    value.check()
            return func(*args, **kwargs)
    return wrapper


def login_url(next_path: str) -> str:
    return "/ui/login?next=" + quote(safe_next(next_path), safe="")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only, never another site."""
    if not value or not value.startswith("/ui/") or value.startswith("//") or "\\" in value:
        return "/ui/"
    return value


AdminDep = Annotated[Admin, Depends(current)]
CheckedDep = Annotated[Admin, Depends(checked)]
