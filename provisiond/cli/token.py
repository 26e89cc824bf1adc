"""`provisiond token`: the HTTP API's bearer tokens."""

from __future__ import annotations

from provisiond.cli.base import Runtime, command


@command("token create")
def cmd_token_create(rt: Runtime, args) -> int:
    from provisiond import tokens
    rt.open_db()
    token = tokens.create(args.name)
    rt.out({"name": args.name, "token": token},
           f"{token}\n(shown once; send it as 'Authorization: Bearer <token>')")
    return 0


@command("token revoke")
def cmd_token_revoke(rt: Runtime, args) -> int:
    from provisiond import tokens
    rt.open_db()
    tokens.revoke(args.name)
    rt.out({"name": args.name, "revoked": True}, f"token {args.name} revoked")
    return 0


def add_parsers(sub, group, top) -> None:
    tg = group("token", "API bearer tokens")
    sub(tg, "create", "create a token (printed once)").add_argument(
        "name", help="what the token is for, e.g. whmcs (unique)")
    sub(tg, "revoke", "revoke a token").add_argument("name", help="the token's name")
