"""Routes of the API's own tokens: who may call it (an admin token). Tokens are made and revoked
with the CLI only, so a token never travels in an API answer."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from provisiond import tokens
from provisiond.api.base import FORBIDDEN, require_admin, with_db
from provisiond.api.schemas import TokenOut

router = APIRouter(tags=["tokens"], dependencies=[Depends(require_admin)], responses=FORBIDDEN)


@router.get("/tokens", response_model=list[TokenOut])
@with_db
def list_tokens():
    """Every token: name, scope, created, last used (to the minute), revoked; never the token
    or its hash."""
    return tokens.listing()
