"""The converter op by op, against TensorFlow.js's own outputs.

``data/tfjs_op_cases.json`` holds small synthetic graph models (``bench/tfjs_cases.py``: every op
the converter maps, with the variants the real models do not use) with an input and the outputs
TensorFlow.js 4.22.0 (pure-JS CPU backend) computed for it, written by ``python
bench/tfjs_equivalence.py --write-references``. Each graph is converted here and run by
onnxruntime; no node is needed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
import pytest

from facegate.engine.convert.tfjs_graph import load_tfjs_model
from facegate.engine.convert.tfjs_onnx import convert_tfjs

CASES_FILE = Path(__file__).parent / "data" / "tfjs_op_cases.json"
CASES: list[dict[str, Any]] = json.loads(CASES_FILE.read_text())["cases"]

RTOL = 1e-5
"""Relative to the largest magnitude of each output: float32 rounding, not semantics."""


def f32(doc: dict[str, Any]) -> npt.NDArray[np.float32]:
    data = np.frombuffer(base64.b64decode(doc["f32"]), dtype="<f4")
    return data.reshape(doc["shape"]).astype(np.float32)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case_matches_tfjs(case: dict[str, Any]) -> None:
    weights = base64.b64decode(case["weights_b64"])
    model = load_tfjs_model(json.dumps(case["model"]).encode(), lambda _path: weights)
    conversion = convert_tfjs(model, outputs=case["outputs"])
    session = ort.InferenceSession(conversion.serialize(), providers=["CPUExecutionProvider"])
    names = list(case["outputs"])
    got = dict(zip(names, session.run(names, {"x": f32(case["input"])}), strict=True))
    for name in names:
        expected = f32(case["expected"][name])
        assert got[name].shape == expected.shape, name
        scale = max(1.0, float(np.abs(expected).max()))
        error = float(np.abs(got[name] - expected).max())
        assert error <= RTOL * scale, f"{case['name']}/{name}: max abs error {error:.3g}"
