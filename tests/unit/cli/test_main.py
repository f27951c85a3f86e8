"""The dispatch table: every command the parser offers has a handler that exists, and nothing else is listed."""

from __future__ import annotations

import argparse

import pytest

from closeloop.cli.main import HANDLERS, handler
from closeloop.cli.parser import build_parser


def _commands() -> set[str]:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_every_command_has_a_handler_and_every_handler_a_command() -> None:
    assert set(HANDLERS) == _commands()


@pytest.mark.parametrize("command", sorted(HANDLERS))
def test_each_handler_resolves_to_a_function(command: str) -> None:
    assert callable(handler(command))
