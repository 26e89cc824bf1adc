"""Every option and argument of every command says what it takes (`--help` is the manual)."""

from __future__ import annotations

import argparse

from provisiond import cli


def _parsers(parser: argparse.ArgumentParser, path: str = "provisiond"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_option_and_argument_has_help():
    missing = [f"{path}: {action.option_strings or action.dest}"
               for path, parser in _parsers(cli.build_parser())
               for action in parser._actions
               if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
               and not action.help]
    assert missing == []

