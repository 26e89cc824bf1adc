"""`provisiond token`: the HTTP API's bearer tokens."""

from __future__ import annotations

from provisiond.cli.base import Runtime, command, table


@command("token create")
def cmd_token_create(rt: Runtime, args) -> int:
    from provisiond import tokens
    rt.open_db()
    token = tokens.create(args.name, args.scope)
    rt.out({"name": args.name, "scope": args.scope, "token": token},
           f"{token}\n(scope {args.scope}; shown once; send it as 'Authorization: Bearer <token>')")
    return 0


@command("token list")
def cmd_token_list(rt: Runtime, args) -> int:
    from provisiond import tokens
    rt.open_db()
    rt.out(tokens.listing(), lambda rows: table(rows, ["name", "scope", "created_at", "last_used_at", "revoked"]))
    return 0


@command("token revoke")
def cmd_token_revoke(rt: Runtime, args) -> int:
    from provisiond import tokens
    rt.open_db()
    tokens.revoke(args.name)
    rt.out({"name": args.name, "revoked": True}, f"token {args.name} revoked")
    return 0


def add_parsers(sub, group, top) -> None:
    from provisiond.tokens import DEFAULT_SCOPE, Scope
    tg = group("token", "API bearer tokens")
    p = sub(tg, "create", "create a token (printed once)")
    p.add_argument("name", help="what the token is for, e.g. whmcs (unique)")
    p.add_argument("--scope", choices=[s.value for s in Scope], default=DEFAULT_SCOPE.value,
                   help="billing (default): orders, payments, service actions and reads, what a "
                        "billing system needs; admin: also servers, groups, products, sync, usage, "
                        "job retry/cancel/resolve, password reveal, service close and import")
    sub(tg, "list", "list tokens: name, scope, created, last used, revoked (never the token)")
    sub(tg, "revoke", "revoke a token").add_argument("name", help="the token's name")
