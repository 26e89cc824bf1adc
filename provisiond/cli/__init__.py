"""The ``provisiond`` command. Thin: parse, call the module that does the work, print.

One module per command group (``server``, ``service``, ...); each registers its handlers with
``@command`` and its arguments in ``add_parsers``. Every listing and show takes ``--json``. Errors
print one line naming the cause; bad input (a field, an unknown id, a state that forbids the
action) exits 2, other failures exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from provisiond import config, logs
from provisiond.cli import job, panels, product, server, service, system, token, usage
from provisiond.cli.base import COMMANDS, Runtime
from provisiond.errors import NotFound, PanelError, ProvisiondError, StateError, ValidationError


GROUPS = (system, token, panels, server, product, service, job, usage)


def build_parser() -> argparse.ArgumentParser:
    # --json is accepted before or after the command; SUPPRESS keeps a subcommand's unset
    # flag from overriding the one given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON instead of text")
    parser = argparse.ArgumentParser(prog="provisiond", parents=[common],
                                     description="Ansible-backed provisioning for hosting control panels.")
    parser.add_argument("--home", help="data directory (default: $PROVISIOND_HOME or ~/.local/share/provisiond)")
    parser.add_argument("--database-url", help="database URL (sqlite:///path or postgresql://...)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def sub(parent, name, help_text, **kwargs):
        return parent.add_parser(name, help=help_text, parents=[common], **kwargs)

    def group(name, help_text):
        return sub(top, name, help_text).add_subparsers(dest="sub", required=True, metavar="ACTION")

    for module in GROUPS:
        module.add_parsers(sub, group, top)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.json = getattr(args, "json", False)
    name = args.command + (f" {args.sub}" if getattr(args, "sub", None) else "")
    try:
        settings = config.load(system.overrides(args))
        logs.setup("DEBUG" if args.verbose else settings.log_level, settings.log_format)
        code = COMMANDS[name](Runtime(settings, args.json), args) or 0
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # `provisiond ... --json | head`: the reader left; end quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (ValidationError, NotFound, StateError, PanelError) as exc:
        print(f"provisiond: error: {exc}", file=sys.stderr)
        return 2
    except ProvisiondError as exc:
        print(f"provisiond: error: {exc}", file=sys.stderr)
        return 1
