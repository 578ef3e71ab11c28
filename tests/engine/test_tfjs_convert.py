"""The TensorFlow.js reader and converter refuse what they cannot convert, saying what and where.

Numerical agreement with TensorFlow.js is in test_tfjs_ops.py and test_tfjs_models.py; this file
checks the reader's format checks, weight decoding details and the converter's errors.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]
import pytest

from facegate.engine.convert.tfjs_graph import TfjsFormatError, load_tfjs_model, tensor_node
from facegate.engine.convert.tfjs_onnx import convert_tfjs
from facegate.engine.convert.tfjs_ops import UnsupportedOpError
from facegate.errors import EngineUnavailableError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def graph(
    nodes: list[dict[str, Any]],
    weights: list[dict[str, Any]],
    dims: tuple[int, ...] = (-1, 4),
    **extra: Any,
) -> dict[str, Any]:
    placeholder = {
        "name": "x",
        "op": "Placeholder",
        "attr": {
            "dtype": {"type": "DT_FLOAT"},
            "shape": {"shape": {"dim": [{"size": str(d)} for d in dims]}},
        },
    }
    doc = {
        "format": "graph-model",
        "modelTopology": {"node": [placeholder, *nodes]},
        "weightsManifest": [{"paths": ["w.bin"], "weights": weights}],
    }
    doc.update(extra)
    return doc


def load(doc: dict[str, Any], data: bytes = b"") -> Any:
    return load_tfjs_model(json.dumps(doc).encode(), lambda _path: data)


def const(name: str) -> dict[str, Any]:
    return {"name": name, "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}}


def test_errors_are_engine_errors() -> None:
    assert issubclass(TfjsFormatError, EngineUnavailableError)
    assert issubclass(UnsupportedOpError, TfjsFormatError)


def test_unsupported_op_is_named_with_its_node() -> None:
    doc = graph([{"name": "weird/op", "op": "Erfinv", "input": ["x"]}], [])
    with pytest.raises(UnsupportedOpError, match=r"op Erfinv \(node 'weird/op'\)"):
        convert_tfjs(load(doc))


def test_unsupported_variant_is_named() -> None:
    nodes = [
        const("w"),
        {
            "name": "conv",
            "op": "_FusedConv2D",
            "input": ["x", "w", "w"],
            "attr": {"fused_ops": {"list": {"s": [b64("FusedBatchNorm")]}}},
        },
    ]
    weights = [{"name": "w", "shape": [1], "dtype": "float32"}]
    with pytest.raises(UnsupportedOpError, match="FusedBatchNorm"):
        convert_tfjs(load(graph(nodes, weights, (-1, 4, 4, 1)), np.zeros(1, "<f4").tobytes()))


def test_layers_models_are_refused() -> None:
    with pytest.raises(TfjsFormatError, match="graph models"):
        load({"format": "layers-model", "modelTopology": {}, "weightsManifest": []})


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"\x00" * 12, "truncated"), (b"\x00" * 20, "beyond its weights")],
)
def test_weight_sizes_must_match_the_manifest(data: bytes, message: str) -> None:
    doc = graph([const("w")], [{"name": "w", "shape": [4], "dtype": "float32"}])
    with pytest.raises(TfjsFormatError, match=message):
        load(doc, data)


def test_weight_paths_stay_in_the_models_folder() -> None:
    doc = graph([], [])
    doc["weightsManifest"][0]["paths"] = ["../../etc/passwd"]
    read: Callable[[str], bytes] = lambda _path: pytest.fail("read a path outside")  # noqa: E731
    with pytest.raises(TfjsFormatError, match="leaves the model's folder"):
        load_tfjs_model(json.dumps(doc).encode(), read)


def test_const_without_weight_and_dangling_inputs() -> None:
    with pytest.raises(TfjsFormatError, match="no value in the weights manifest"):
        load(graph([const("w")], []))
    doc = graph([{"name": "r", "op": "Relu", "input": ["nowhere"]}], [])
    with pytest.raises(TfjsFormatError, match="which no node produces"):
        load(doc)


def test_quantized_weights_decode_as_tfjs_does() -> None:
    """uint8: q * scale + min in double precision, stored as float32; int32: Math.round."""
    weights = [
        {
            "name": "f",
            "shape": [3],
            "dtype": "float32",
            "quantization": {"dtype": "uint8", "min": -1.0, "scale": 0.1},
        },
        {
            "name": "i",
            "shape": [2],
            "dtype": "int32",
            "quantization": {"dtype": "uint16", "min": 0.5, "scale": 1.0},
        },
        {
            "name": "h",
            "shape": [2],
            "dtype": "float32",
            "quantization": {"dtype": "float16", "original_dtype": "float32"},
        },
    ]
    data = bytes([0, 10, 255]) + np.array([1, 2], "<u2").tobytes()
    data += np.array([0.5, -2.0], "<f2").tobytes()
    model = load(graph([const("f"), const("i"), const("h")], weights), data)
    assert model.weights["f"].tolist() == pytest.approx([-1.0, 0.0, 24.5])
    assert model.weights["f"].dtype == np.float32
    assert model.weights["i"].tolist() == [2, 3]  # 1.5 and 2.5 round half up
    assert model.weights["h"].tolist() == [0.5, -2.0]


def test_unknown_quantization_is_refused() -> None:
    weights = [{"name": "w", "shape": [1], "dtype": "float32", "quantization": {"dtype": "int4"}}]
    with pytest.raises(TfjsFormatError, match="unknown quantization"):
        load(graph([const("w")], weights), b"\x00")


def test_cycles_and_missing_outputs() -> None:
    doc = graph(
        [
            {"name": "a", "op": "Relu", "input": ["b"]},
            {"name": "b", "op": "Relu", "input": ["a"]},
        ],
        [],
    )
    with pytest.raises(TfjsFormatError, match="cycle"):
        convert_tfjs(load(doc), outputs={"y": "a"})
    with pytest.raises(TfjsFormatError, match="no node 'missing'"):
        convert_tfjs(load(graph([], [])), outputs={"y": "missing"})


def test_outputs_keep_the_batch_dynamic_and_tf_names() -> None:
    weights = [{"name": "w", "shape": [4, 3], "dtype": "float32"}]
    nodes = [
        const("w"),
        {"name": "dense/MatMul", "op": "MatMul", "input": ["x", "w"]},
        {"name": "Identity", "op": "Identity", "input": ["dense/MatMul"]},
    ]
    w = np.arange(12, dtype="<f4").reshape(4, 3)
    model = load(
        graph(nodes, weights, signature={"outputs": {"scores": {"name": "Identity:0"}}}),
        w.tobytes(),
    )
    assert tensor_node("Identity:0") == "Identity"
    conversion = convert_tfjs(model, input_name="features")
    assert dict(conversion.outputs) == {"scores": "Identity:0"}
    session = ort.InferenceSession(conversion.serialize(), providers=["CPUExecutionProvider"])
    x = np.ones((3, 4), np.float32)
    (y,) = session.run(["scores"], {"features": x})
    np.testing.assert_allclose(y, x @ w)
    assert conversion.serialize() == convert_tfjs(model, input_name="features").serialize()
