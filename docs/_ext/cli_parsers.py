"""The commands' parsers as the command reference renders them: their help is plain text, the
reference is reStructuredText, so every description and help text is escaped first (a
``firmware/rpfw/*.py`` would otherwise start emphasis)."""

from __future__ import annotations

import argparse
import re

from ratepad.cli.main import build_parser as host_parser
from ratepad_server.cli import build_parser as server_parser_of

_SPECIAL = re.compile(r"([\\*`|])|(_)(?=\W|$)")


def _escape(text: str | None) -> str | None:
    return None if text is None else _SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def _escaped(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.description = _escape(parser.description)
    parser.epilog = _escape(parser.epilog)
    for action in parser._actions:
        if action.help not in (None, argparse.SUPPRESS):
            action.help = _escape(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = _escape(choice.help)
            for sub in set(action.choices.values()):
                _escaped(sub)
    return parser


def ratepad() -> argparse.ArgumentParser:
    return _escaped(host_parser())


def server() -> argparse.ArgumentParser:
    return _escaped(server_parser_of())
