"""Configuration problems: a file, a 1-based line and column, and a message naming what would be valid."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True, order=True)
class ConfigProblem:
    """One mistake in a configuration or mapping file, at a 1-based line and column."""

    path: Path
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class ConfigError(Exception):
    """Raised by ``load_config`` when the configuration has problems; carries all of them."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Problems:
    """A collector of problems across every file of one configuration; never stops at the first."""

    items: list[ConfigProblem] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    """Values that came from the environment; they are masked in every message."""

    def add(self, path: Path, line: int, col: int, message: str) -> None:
        """Record one problem."""
        self.items.append(ConfigProblem(path, line, col, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def sorted(self) -> list[ConfigProblem]:
        """The problems in file and position order, duplicates removed and secrets masked."""
        unique = sorted(set(self.items), key=lambda p: (str(p.path), p.line, p.col, p.message))
        return [self._masked(p) for p in unique]

    def _masked(self, problem: ConfigProblem) -> ConfigProblem:
        message = problem.message
        for secret in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(secret, "***")
        return ConfigProblem(problem.path, problem.line, problem.col, message)


def one_of(valid: Iterable[str]) -> str:
    """``'a', 'b' or 'c'`` for a message listing the valid choices."""
    names = [repr(v) for v in valid]
    if not names:
        return "(none)"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def suggest(word: str, valid: Iterable[str]) -> str:
    """``; did you mean 'x'?`` when a valid word is close to ``word``, else the empty string."""
    close = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown(kind: str, word: str, valid: Iterable[str], where: str = "") -> str:
    """The message for an unknown key, system, policy...: names the valid ones and the closest."""
    choices = list(valid)
    return f"unknown {kind} {word!r}{where}; valid: {one_of(choices)}{suggest(word, choices)}"
