"""Hostile configuration files: each costs little to refuse and ends as a problem at file:line:col, never a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from closeloop.config.problems import Problems
from closeloop.config.yamlguard import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES
from closeloop.config.yamlsrc import load_source

from .conftest import Check


def laughs(levels: int) -> str:
    """A "billion laughs" document: each level is a list of nine aliases of the level before."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def nested_lists(depth: int) -> str:
    return "x: " + "[" * depth + "]" * depth + "\n"


def nested_blocks(depth: int) -> str:
    return "x:\n" + "".join("  " * level + "-\n" for level in range(1, depth + 1))


def sized(size: int) -> str:
    """A valid file of exactly ``size`` bytes: one key and a long comment."""
    return "a: 1\n#" + "#" * (size - 7) + "\n"


HOSTILE: list[object] = [
    pytest.param(laughs(9).encode(), "5:10: aliases expand to more than 10,000 values", id="billion-laughs"),
    pytest.param(
        b"a: &a\n  b: *a\n", "2:6: alias *a refers to a value that contains it; a recursive alias never ends", id="self"
    ),
    pytest.param(
        b"a: &a [x, &b [y, *a]]\n", "1:18: alias *a refers to a value that contains it", id="recursive-through-another"
    ),
    pytest.param(nested_lists(10_000).encode(), "1:67: nested more than 64 levels deep", id="deep-flow-lists"),
    pytest.param(nested_blocks(100).encode(), "65:129: nested more than 64 levels deep", id="deep-block-lists"),
    pytest.param(
        b"a: &a " + nested_lists(40).encode()[3:] + b"b: " + nested_lists(40).encode()[3:-1].replace(b"[]", b"[*a]"),
        "2:44: nested more than 64 levels deep",
        id="deep-through-an-alias",
    ),
    pytest.param("path: café\n".encode("latin-1"), "1:10: not UTF-8 text (byte 0xe9 at offset 9)", id="latin-1"),
    pytest.param(b"a: 1\nb: \xff\xfe\n", "2:4: not UTF-8 text (byte 0xff at offset 8)", id="stray-bytes"),
    pytest.param(
        "a: 1\n".encode("utf-16"),
        "1:1: not UTF-8 text (UTF-16, by its byte-order mark); save the file as UTF-8",
        id="utf-16",
    ),
    pytest.param(bytes(range(256)) * 4, "1:1: binary file, not YAML text (NUL byte at offset 0)", id="binary"),
    pytest.param(b"a: 1\nb: x\x00y\n", "2:5: binary file, not YAML text (NUL byte at offset 9)", id="nul-in-text"),
    pytest.param(b"a: 1\nb: \x01\n", "2:4: not YAML text: control character #x0001 is not allowed", id="control-char"),
    pytest.param(sized(MAX_FILE_BYTES + 1).encode(), "1:1: file is larger than 256 KiB", id="too-large"),
]


@pytest.mark.parametrize(("content", "problem"), HOSTILE)
def test_hostile_yaml_is_one_problem_at_its_position(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "closeloop.yaml"
    path.write_bytes(content)
    problems = Problems()
    load_source(path, problems)
    found = [f"{p.line}:{p.col}: {p.message}" for p in problems.sorted()]
    assert any(line.startswith(problem) for line in found), found


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(laughs(4), id="aliases-within-the-cap"),
        pytest.param(nested_lists(MAX_DEPTH - 1), id="nesting-within-the-cap"),
        pytest.param(sized(MAX_FILE_BYTES), id="size-within-the-cap"),
        pytest.param("a: &x 1\nb: &x 2\nc: *x\n", id="redefined-anchor"),
        pytest.param("\ufeffa: 1\n", id="utf-8-with-bom"),
    ],
)
def test_files_within_the_limits_load(tmp_path: Path, content: str) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(content, encoding="utf-8")
    problems = Problems()
    assert load_source(path, problems) is not None
    assert not problems


def test_shared_values_expand_like_the_anchor(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("base: &b {x: 1, y: [2, 3]}\ncopy: *b\n", encoding="utf-8")
    source = load_source(path, Problems())
    assert source is not None
    assert source.data["copy"] == {"x": 1, "y": [2, 3]}
    assert 9**4 < MAX_ALIAS_NODES < 9**5  # laughs(4) fits the cap, laughs(5) would not


def test_a_hostile_mapping_file_is_named_with_its_position(problems_of: Check) -> None:
    found = problems_of(contacts=laughs(9))
    assert found == [
        "contacts.yaml:5:10: aliases expand to more than 10,000 values (an alias of aliases multiplies them); "
        "write the values out or share less"
    ]


@pytest.mark.parametrize("command", ["validate", "run", "sync", "status", "plan", "errors", "report"])
def test_every_command_refuses_a_binary_config_with_exit_2(tmp_path: Path, command: str) -> None:
    config = tmp_path / "closeloop.yaml"
    config.write_bytes(b"systems:\n  crm: \x89PNG\r\n\x1a\n\x00\x00")
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "closeloop.cli", command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"{config}:4:1: binary file, not YAML text (NUL byte at offset 24)" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
