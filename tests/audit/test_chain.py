"""The canonical form and the exact bytes of a line (the format others code against)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from facegate.audit.chain import (
    GENESIS,
    canonical,
    check_keys,
    encode_entry,
    entry_hash,
    hashed_body,
)
from facegate.audit.log import iter_entries
from tests.audit.conftest import request_record


def test_canonical_sorts_keys_at_every_level_without_whitespace() -> None:
    assert canonical({"b": 1, "a": {"d": [1, 2], "c": None}}) == (
        b'{"a":{"c":null,"d":[1,2]},"b":1}'
    )


def test_canonical_escapes_non_ascii_and_keeps_floats_exact() -> None:
    text = canonical({"name": "Zoë 人", "x": 0.1, "y": 1e-300, "z": -0.0, "n": 10**20})
    assert (
        text
        == b'{"n":100000000000000000000,"name":"Zo\\u00eb \\u4eba","x":0.1,"y":1e-300,"z":-0.0}'
    )
    assert canonical(json.loads(text)) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_canonical_refuses_nan_and_infinities(value: float) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        canonical({"x": value})


def test_non_string_keys_are_refused() -> None:
    check_keys({"a": [{"b": {"c": 1}}]})
    with pytest.raises(TypeError, match="strings"):
        check_keys({"a": [{"b": {1: "x"}}]})
    with pytest.raises(TypeError, match="strings"):
        encode_entry(1, GENESIS, {"kind": "x", True: 1})  # type: ignore[dict-item]


def test_line_is_canonical_json_of_the_entry_and_hash_follows_the_definition() -> None:
    record = request_record(7)
    digest, line = encode_entry(1, GENESIS, record)
    entry = {"seq": 1, "prev": GENESIS, "hash": digest, "record": record}
    assert line == canonical(entry) + b"\n"
    assert digest == entry_hash(1, GENESIS, record)
    assert (
        digest
        == hashlib.sha256(canonical({"seq": 1, "prev": GENESIS, "record": record})).hexdigest()
    )
    assert hashlib.sha256(hashed_body(line)).hexdigest() == digest
    assert line.startswith(b'{"hash":"' + digest.encode() + b'","prev":"')


def test_lines_written_by_the_log_follow_the_format(written_log: Path) -> None:
    prev = GENESIS
    for seq, raw in enumerate((written_log / "segment-000001.jsonl").read_bytes().splitlines(), 1):
        obj = json.loads(raw)
        assert canonical(obj) == raw
        assert obj["seq"] == seq
        assert obj["prev"] == prev
        assert obj["hash"] == entry_hash(seq, prev, obj["record"])
        prev = obj["hash"]
    assert [e.seq for e in iter_entries(written_log)] == list(range(1, 34))
