"""``POST /v1/services/import``: record services a billing system already has (an admin token).

The body is the same CSV file ``provisiond service import`` reads (``Content-Type: text/csv``,
UTF-8, a header row; see provisiond.imports for the columns and checks), so a file checked with
the CLI's ``--dry-run`` is the file sent here. ``?dry_run=true`` checks and answers what would
be imported, writing nothing. Any problem in any row is a 422 listing every one, as
``{"loc": ["body", ROW, FIELD], "msg": ..., "type": "value_error"}``, and nothing is written.
Bodies over 1 MiB are refused (413), which is about 10,000 rows: import a bigger file with the
CLI, or in parts (each part is then its own transaction).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from provisiond import imports
from provisiond.api.base import FORBIDDEN, INVALID, Context, context, problem, require_admin, with_db
from provisiond.api.schemas import ImportOut
from provisiond.models import ApiToken

router = APIRouter(tags=["services"], responses={**FORBIDDEN, **INVALID})

CSV_BODY = Body(media_type="text/csv", description="a CSV file with a header row (see provisiond.imports)")


@router.post("/services/import", response_model=ImportOut)
@with_db
def import_services(file: Annotated[bytes, CSV_BODY], ctx: Annotated[Context, Depends(context)],
                    token: Annotated[ApiToken, Depends(require_admin)],
                    dry_run: Annotated[bool, Query()] = False):
    """Check every row; when none has a problem (and not ``dry_run``), record them all in one
    transaction, audited. No panel is called: the accounts exist already."""
    try:
        result = imports.import_services(imports.decode(file), ctx.panels(), actor=f"api:{token.name}",
                                         source="api", dry_run=dry_run)
    except imports.ImportRefused as refused:
        return problem(422, [{"loc": ["body", e.row, e.field], "msg": e.message, "type": "value_error"}
                             for e in refused.errors])
    return result.view()
