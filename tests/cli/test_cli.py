"""The command line: output, exit codes, one-line errors."""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facegate.cli import (
    EXIT_BAD_INPUT,
    EXIT_NO_FACE,
    EXIT_NO_MATCH,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    main,
)
from facegate.engine.matching import default_matcher


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_detect_json(samples: Path) -> None:
    code, text = run(
        "detect", str(samples / "two_people.jpg"), str(samples / "coffee.png"), "--format", "json"
    )
    assert code == EXIT_OK
    docs = json.loads(text)
    assert [len(d["faces"]) for d in docs] == [2, 0]
    face = docs[0]["faces"][0]
    assert set(face) == {"box_px", "box_ratio", "confidence_pct", "landmarks", "pose", "quality"}
    assert len(face["landmarks"]) == 30
    assert "descriptor" not in text  # vectors are never printed


@pytest.mark.slow
def test_detect_table_and_bad_inputs(
    samples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    code, text = run("detect", str(samples / "obama.jpg"), str(junk), str(tmp_path / "missing.png"))
    assert code == EXIT_BAD_INPUT
    assert "obama.jpg: 910x1137 JPEG, 1 face(s)" in text
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "junk.jpg: InvalidImageFormatException: The image is not a JPEG or PNG" in err[0]
    assert "missing.png: cannot read" in err[1]


@pytest.mark.slow
def test_compare_match_and_no_match(samples: Path) -> None:
    code, text = run("compare", str(samples / "obama.jpg"), str(samples / "obama2.jpg"))
    assert code == EXIT_OK
    assert "MATCH" in text
    code, text = run("compare", str(samples / "obama.jpg"), str(samples / "biden.jpg"))
    assert code == EXIT_NO_MATCH
    assert "no match" in text


def test_compare_json_against_a_group(samples: Path) -> None:
    code, text = run(
        "compare", str(samples / "biden.jpg"), str(samples / "two_people.jpg"), "--format", "json"
    )
    assert code == EXIT_OK
    doc = json.loads(text)
    assert [f["match"] for f in doc["faces"]].count(True) == 1
    assert doc["similarity_model"] == default_matcher().version


def test_compare_without_a_source_face(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("compare", str(samples / "coffee.png"), str(samples / "obama.jpg"))
    assert code == EXIT_NO_FACE
    assert "no face found in the source image" in capsys.readouterr().err


def test_usage_errors_exit_2(samples: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["compare", str(samples / "obama.jpg")])
    assert info.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as info:
        main(["compare", "a", "b", "--threshold", "101"])
    assert info.value.code == EXIT_USAGE


def _groups(text: str) -> list[set[str]]:
    groups: list[set[str]] = []
    for line in text.split("Same person?")[1].splitlines()[1:]:
        if line.startswith("      "):
            groups[-1].add(line.strip())
        elif "images, lowest similarity" in line:
            groups.append(set())
    return groups


@pytest.mark.slow
def test_demo_over_the_samples(samples: Path) -> None:
    code, text = run("demo", "--samples", str(samples))
    assert code == EXIT_OK
    assert "group_t1.jpg" in text
    groups = _groups(text)
    obama = next(g for g in groups if "obama.jpg" in g)
    assert {"obama2.jpg", "obama3.jpg", "32bit.png"} <= obama
    assert "biden.jpg" not in obama
    assert {"biden.jpg", "two_people.jpg"} in groups


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("facegate")
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("facegate ")


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_package_docstring_lists_every_command_and_action() -> None:
    import facegate.cli

    # a long list of actions may wrap after a "|" (the docstring keeps to 100 columns)
    doc = re.sub(r"\|\s+", "|", facegate.cli.__doc__ or "")
    for name, sub in _commands(build_parser()).items():
        actions = "|".join(_commands(sub))
        listed = f"``{name} {actions}" if actions else f"``{name}"
        assert listed in doc, f"the facegate.cli docstring does not list {listed[2:]!r}"
