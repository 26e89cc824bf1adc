"""``GET /v1/products/{name}/checkout``: a product's checkout schema, for a billing token.

The rest of ``/v1/products`` is the fleet's (admin); a billing system needs only this to render
its order form, so this one route is open to billing tokens (``GET /v1/products/{name}`` gives
an admin the same schema under ``checkout``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from provisiond import checkout, fleet
from provisiond.api.base import INVALID, NOT_FOUND, Context, context, with_db
from provisiond.api.schemas import REF_PATTERN, CheckoutSchema

router = APIRouter(tags=["services"])
Ctx = Annotated[Context, Depends(context)]
Name = Annotated[str, Path(min_length=1, max_length=100, pattern=REF_PATTERN, description="the product's name")]


@router.get("/products/{name}/checkout", response_model=CheckoutSchema, response_model_exclude_none=True,
            responses={**NOT_FOUND, **INVALID})
@with_db
def product_checkout(name: Name, ctx: Ctx):
    """The JSON Schema of an order's ``fields`` for this product: its panel's checkout fields and
    its own, with type, title, pattern, enum, default and which are required."""
    product = fleet.product_named(name)
    return checkout.json_schema(ctx.panels().get(product.panel), product)
