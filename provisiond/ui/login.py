"""``/ui/login``: a form with one field, ``token`` (an admin API token); ``/ui/logout`` ends
the session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request

from provisiond import tokens
from provisiond.api.base import with_db
from provisiond.tokens import Scope
from provisiond.ui import session
from provisiond.ui.render import page, redirect

router = APIRouter()


@router.get("/login")
def login_form(request: Request, next: Annotated[str, Query(max_length=2000)] = "/ui/"):
    return page(request, "login.html", title="Sign in", next=session.safe_next(next), problem="")


@router.post("/login")
@with_db
def login(request: Request, token: Annotated[str, Form(max_length=4096)] = "",
          next: Annotated[str, Form(max_length=2000)] = "/ui/"):
    found = tokens.verify(token.strip())
    problem = ""
    if found is None:
        problem = "This token is not valid (unknown or revoked)."
    elif not tokens.allows(found, Scope.ADMIN):
        problem = (f"Token {found.name} has scope {found.scope}; the console needs an admin token "
                   "(provisiond token create NAME --scope admin).")
    if problem:
        return page(request, "login.html", status_code=401, title="Sign in",
                    next=session.safe_next(next), problem=problem)
    value, _ = session.start(request.app.state.context.vault, found)
    response = redirect(session.safe_next(next))
    session.set_cookie(response, request, value)
    return response


@router.post("/logout")
@session.with_admin
def logout(request: Request, admin: session.CheckedDep):
    response = redirect("/ui/login", flash="Signed out.")
    session.clear_cookie(response)
    return response
