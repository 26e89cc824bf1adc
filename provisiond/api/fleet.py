"""Admin routes of the fleet: servers, server groups and products (list, add, change, retire).

Each route calls the operation the CLI calls (``catalog`` to add, ``fleet`` to change and
remove) and answers with a view that carries no secret (credentials masked). Every route needs
an admin token (``require_admin``). Bad input is 422 naming the field, an unknown name 404, a
refusal (a server that still holds services, a group or product in use) 409. Warnings (a
package that could not be checked, max_accounts below the accounts placed) are in ``warnings``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from provisiond import catalog, fleet, servertest
from provisiond.api.base import (CONFLICT, INVALID, NOT_FOUND, Context, QueryProblem, context, require_admin,
                                 with_db)
from provisiond.api.schemas import REF_PATTERN, Strict
from provisiond.models import ApiToken, Server
from provisiond.views import group_view, product_view, server_view

router = APIRouter(tags=["fleet"], dependencies=[Depends(require_admin)])
Ctx = Annotated[Context, Depends(context)]
Admin = Annotated[ApiToken, Depends(require_admin)]
Name = Annotated[str, Path(min_length=1, max_length=100, pattern=REF_PATTERN)]
Strategy = Literal["least-loaded", "fill-until-full", "round-robin"]
Value = str | int | bool
ANSWERS = {**NOT_FOUND, **CONFLICT, **INVALID}


def actor(token: ApiToken) -> str:
    return f"api:{token.name}"


# -- bodies ----------------------------------------------------------------------------------

NameField = Field(min_length=1, max_length=100, pattern=REF_PATTERN)
Port = Field(None, ge=1, le=65535)
MaxAccounts = Field(ge=0, le=catalog.MAX_INT)
Days = Field(None, ge=0, le=3650)


class GroupIn(Strict):
    name: str = NameField
    strategy: Strategy = "least-loaded"


class GroupPatch(Strict):
    strategy: Strategy | None = None


class ServerIn(Strict):
    name: str = NameField
    panel: str = Field(min_length=1, max_length=64)
    host: str = Field(min_length=1, max_length=255)
    port: int | None = Port
    group: str = NameField
    max_accounts: int = Field(500, ge=0, le=catalog.MAX_INT)
    max_concurrency: int = Field(2, ge=1, le=catalog.MAX_CONCURRENCY, description=(
        "panel calls made to it at once, at most (every run on it and every fork of them)"))
    credentials: dict[str, Value] = Field(default_factory=dict, description=(
        "the panel's credential fields (see its panel.yaml); secrets are stored encrypted"))


class ServerPatch(Strict):
    """Only the fields given change; a secret credential given blank or masked is kept."""

    host: str | None = Field(None, min_length=1, max_length=255)
    port: int | None = Port
    group: str | None = Field(None, min_length=1, max_length=100, pattern=REF_PATTERN)
    max_accounts: int | None = Field(None, ge=0, le=catalog.MAX_INT)
    max_concurrency: int | None = Field(None, ge=1, le=catalog.MAX_CONCURRENCY)
    credentials: dict[str, Value] | None = None


class ProductIn(Strict):
    name: str = NameField
    panel: str = Field(min_length=1, max_length=64)
    group: str = NameField
    package: str = Field(min_length=1, max_length=100)
    config: dict[str, Value] = Field(default_factory=dict)
    suspend_after_days: int | None = Days
    terminate_after_days: int | None = Days
    steps: list[str] = Field(default_factory=list, max_length=20)
    welcome_password: bool = False
    backup_before_terminate: bool = False
    checkout: dict[str, dict[str, Any]] = Field(default_factory=dict, max_length=50, description=(
        "the product's own checkout fields, as panel.yaml's `checkout:` has them: {name: {type, label, "
        "pattern, choices, required, default, min, max}}; none may share a name with its panel's"))


class ProductPatch(Strict):
    """Only the fields given change; ``config`` is merged (a key set to null or "" is removed);
    ``suspend_after_days``/``terminate_after_days`` null means the daemon's default."""

    package: str | None = Field(None, min_length=1, max_length=100)
    config: dict[str, Value | None] | None = None
    suspend_after_days: int | None = Days
    terminate_after_days: int | None = Days
    steps: list[str] | None = Field(None, max_length=20)
    welcome_password: bool | None = None
    backup_before_terminate: bool | None = None
    checkout: dict[str, dict[str, Any]] | None = Field(None, max_length=50, description=(
        "the product's own checkout fields, all of them (replacing the current ones; {} for none)"))


def changes(body: Strict, nullable: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields the caller sent; null is "keep" except for the fields where it means something."""
    return {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k in nullable}


def edited(view: dict, result: fleet.Edited) -> dict:
    return view | {"changed": result.changed, "warnings": result.warnings}


# -- groups ----------------------------------------------------------------------------------

@router.get("/groups")
@with_db
def list_groups():
    return [group_view(g) for g in fleet.list_groups()]


@router.post("/groups", status_code=201, responses=INVALID)
@with_db
def add_group(body: GroupIn):
    return group_view(catalog.add_group(body.name, body.strategy))


@router.get("/groups/{name}", responses={**NOT_FOUND, **INVALID})
@with_db
def show_group(name: Name):
    return group_view(fleet.group_named(name))


@router.patch("/groups/{name}", responses=ANSWERS)
@with_db
def edit_group(name: Name, body: GroupPatch, token: Admin):
    result = fleet.edit_group(name, changes(body), actor(token))
    return edited(group_view(result.row), result)


@router.delete("/groups/{name}", responses=ANSWERS)
@with_db
def remove_group(name: Name, token: Admin):
    return fleet.remove_group(name, actor(token))


# -- servers ---------------------------------------------------------------------------------

@router.get("/servers")
@with_db
def list_servers():
    return [server_view(s) for s in Server.select().order_by(Server.name)]


@router.post("/servers", status_code=201, responses=INVALID)
@with_db
def add_server(body: ServerIn, ctx: Ctx, test: Annotated[bool, Query(description=(
        "run the panel's test_connection with these settings first; when it fails nothing is saved "
        "and the answer is a 422 naming `test` with the panel's answer"))] = False):
    fields = dict(name=body.name, panel=body.panel, host=body.host, port=body.port, group_name=body.group,
                  max_accounts=body.max_accounts, max_concurrency=body.max_concurrency, credentials=body.credentials)
    if not test:
        return server_view(catalog.add_server(ctx.panels(), ctx.vault, **fields))
    try:
        server, outcome = servertest.add_tested(ctx.settings, ctx.panels(), ctx.vault, **fields)
    except servertest.TestFailed as exc:
        raise QueryProblem(exc) from None
    return server_view(server) | {"test": outcome}


@router.get("/servers/{name}", responses={**NOT_FOUND, **INVALID})
@with_db
def show_server(name: Name):
    return server_view(fleet.server_named(name))


@router.patch("/servers/{name}", responses=ANSWERS)
@with_db
def edit_server(name: Name, body: ServerPatch, ctx: Ctx, token: Admin):
    """Change the fields given; a changed host or port of an SSH panel is pinned again by a test."""
    result = fleet.edit_server(ctx.panels(), ctx.vault, name, changes(body), actor(token))
    return edited(server_view(result.row), result)


@router.post("/servers/{name}/disable", responses=ANSWERS)
@with_db
def disable_server(name: Name, token: Admin):
    """The server takes no new order; its queued jobs still run."""
    return server_view(fleet.set_enabled(name, False, actor(token)))


@router.post("/servers/{name}/enable", responses=ANSWERS)
@with_db
def enable_server(name: Name, token: Admin):
    return server_view(fleet.set_enabled(name, True, actor(token)))


@router.delete("/servers/{name}", responses=ANSWERS)
@with_db
def remove_server(name: Name, token: Admin):
    """409 while it holds services that are not terminated or closed."""
    return fleet.remove_server(name, actor(token))


# -- products --------------------------------------------------------------------------------

@router.get("/products")
@with_db
def list_products():
    return [product_view(p) for p in fleet.list_products()]


@router.post("/products", status_code=201, responses=INVALID)
@with_db
def add_product(body: ProductIn, ctx: Ctx):
    """The package is checked against the panel's list where it has one (unknown: 422)."""
    result = fleet.add_product(ctx.settings, ctx.vault, ctx.panels(), name=body.name, panel=body.panel,
                               group_name=body.group, package=body.package, config=body.config,
                               suspend_after_days=body.suspend_after_days,
                               terminate_after_days=body.terminate_after_days, steps=body.steps,
                               welcome_password=body.welcome_password,
                               backup_before_terminate=body.backup_before_terminate, checkout=body.checkout)
    return product_view(result.row, ctx.panels()) | {"warnings": result.warnings}


@router.get("/products/{name}", responses={**NOT_FOUND, **INVALID})
@with_db
def show_product(name: Name, ctx: Ctx):
    """The product, with its checkout schema (``checkout``: JSON Schema of an order's ``fields``)."""
    return product_view(fleet.product_named(name), ctx.panels())


@router.patch("/products/{name}", responses=ANSWERS)
@with_db
def edit_product(name: Name, body: ProductPatch, ctx: Ctx, token: Admin):
    """New orders get the change; existing services keep their package unless a change-package
    is queued for them."""
    result = fleet.edit_product(ctx.settings, ctx.vault, ctx.panels(), name,
                                changes(body, ("config", "suspend_after_days", "terminate_after_days")),
                                actor(token))
    return edited(product_view(result.row, ctx.panels()), result)


@router.delete("/products/{name}", responses=ANSWERS)
@with_db
def remove_product(name: Name, token: Admin):
    """409 while any service names the product."""
    return fleet.remove_product(name, actor(token))
