"""Mutated configuration and mapping files: exit 2 with file:line messages, never a traceback or an internal error."""

from __future__ import annotations

import io
import random
import re
import shutil
from pathlib import Path

import pytest

from closeloop.cli.config import validate_command
from tests.reliability.kit import REPO

LOCATION = re.compile(r"^\S+\.ya?ml:\d+(:\d+)?", re.MULTILINE)
JUNK = [
    "",
    "~",
    "null",
    "[",
    "]",
    "{",
    "}",
    ":",
    "- x",
    "'",
    '"',
    "&a",
    "*a",
    "!!python/object:os.system",
    "1e999",
    "-1",
    "0",
    "yes",
    "\t",
    "\\u0000",
    "é",
    "ｘ",
    "<<: *a",
    "? x",
    "%YAML 1.1",
    "---",
    "...",
    "#",
    "@",
    "`",
]
FILES = ("sandbox.yaml", "mappings/contacts.yaml", "mappings/deals.yaml")


def _mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        if not lines:  # an earlier mutation cut the file down to nothing: an empty file is a case of its own
            break
        i = rng.randrange(len(lines))
        kind = rng.randrange(7)
        if kind == 0:
            del lines[i]
        elif kind == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif kind == 2 and lines[i]:
            j = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:j] + rng.choice(JUNK) + lines[i][j + 1 :]
        elif kind == 3:
            lines[i] = " " * rng.choice((1, 3, 5)) + lines[i]
        elif kind == 4 and ":" in lines[i]:
            key, _, _ = lines[i].partition(":")
            lines[i] = f"{key}: {rng.choice(JUNK)}"
        elif kind == 5:
            lines = lines[: i + 1]
        else:
            lines[i] = lines[i].replace(rng.choice("abcdeilmnorst"), rng.choice("xz_-"), 1)
    return "\n".join(lines) + "\n"


def _workspace(tmp: Path) -> dict[str, str]:
    shutil.copytree(REPO / "config", tmp / "config")
    return {name: (tmp / "config" / name).read_text() for name in FILES}


@pytest.mark.parametrize("count", [pytest.param(200, id="200"), pytest.param(1_000, id="1000", marks=pytest.mark.slow)])
def test_mutated_configs_fail_with_file_and_line(tmp_path: Path, count: int) -> None:
    originals = _workspace(tmp_path)
    rng = random.Random(count)
    bad: list[str] = []
    for case in range(count):
        target = rng.choice(FILES)
        mutated = _mutate(originals[target], rng)
        (tmp_path / "config" / target).write_text(mutated)
        out, err = io.StringIO(), io.StringIO()
        code = validate_command(tmp_path / "config" / "sandbox.yaml", environ={}, out=out, err=err)
        message = err.getvalue()
        located = code == 0 or LOCATION.search(message)
        if code not in (0, 2) or "Traceback" in message or "internal error" in message or not located:
            bad.append(f"case {case} ({target}), exit {code}: {message.strip()[:300]}\n--- mutated:\n{mutated}")
        (tmp_path / "config" / target).write_text(originals[target])
    assert not bad, f"{len(bad)} of {count} mutations answered badly; first:\n{bad[0]}"
