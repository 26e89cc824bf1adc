"""Admin routes of product variants: ``/v1/products/{name}/variants`` (list, add, remove).

The same operations as `provisiond product variant`; bad input is 422 naming the field, an
unknown product or variant 422 naming ``product`` / ``variant`` (as an order naming them), a
variant still named by services 409.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field

from provisiond import variants
from provisiond.api.base import CONFLICT, INVALID, Context, context, require_admin, with_db
from provisiond.api.fleet import Admin, Name, NameField, Value, actor
from provisiond.api.schemas import Strict

router = APIRouter(tags=["fleet"], dependencies=[Depends(require_admin)])
Ctx = Annotated[Context, Depends(context)]


class VariantIn(Strict):
    name: str = NameField
    config: dict[str, Value] = Field(default_factory=dict, description=(
        "package settings over the product's (the panel's package: fields)"))
    package: str | None = Field(None, min_length=1, max_length=100,
                                description="another package of the panel (default: the product's)")


@router.get("/products/{name}/variants", responses=INVALID)
@with_db
def list_variants(name: Name):
    return [variants.view(v) for v in variants.listed(name)]


@router.post("/products/{name}/variants", status_code=201, responses=INVALID)
@with_db
def add_variant(name: Name, body: VariantIn, ctx: Ctx, token: Admin):
    """The package, when given, is checked against the panel's list like a product's."""
    registry = ctx.panels()
    added, warnings = variants.add(registry, name, body.name, body.config, body.package, actor=actor(token),
                                   check_package=variants.package_checker(ctx.settings, ctx.vault, registry))
    return variants.view(added) | {"warnings": warnings}


@router.delete("/products/{name}/variants/{variant}", responses={**CONFLICT, **INVALID})
@with_db
def remove_variant(name: Name, variant: Name, token: Admin):
    """409 while any service names the variant or a queued change-package moves one to it."""
    return variants.remove(name, variant, actor=actor(token))
