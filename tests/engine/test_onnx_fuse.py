"""engine.onnx_fuse: ReLU6 chains become one Clip, only where that is exact, and the converted
faceres graph computes the same descriptors, bit for bit, on real faces."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort  # type: ignore[import-untyped]  # no stubs or py.typed
import pytest
from onnx import TensorProto, helper, numpy_helper

from facegate.engine.core import EngineConfig, FaceEngine, _in_pixels
from facegate.engine.describers import OnnxDescriber, model_input
from facegate.engine.descriptors import FACERES_V1
from facegate.engine.human_models import default_models_dir
from facegate.engine.onnx_fuse import fuse_relu6, fused_bytes
from tests.conftest import SAMPLES, SHARED_DATA

FACERES = default_models_dir() / "faceres.onnx"
needs_faceres = pytest.mark.skipif(not FACERES.is_file(), reason="faceres is not converted")


def _session(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def _chain(low: float, high: float, extra_reader: bool = False) -> onnx.ModelProto:
    """x -> Relu -> Min(high) -> Max(low) -> y (and, if asked, Relu's output read again)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Min", ["r", "hi"], ["m"]),
        helper.make_node("Max", ["m", "lo"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])]
    if extra_reader:
        nodes.append(helper.make_node("Neg", ["r"], ["n"]))
        outputs.append(helper.make_tensor_value_info("n", TensorProto.FLOAT, [2, 3]))
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        outputs,
        [
            numpy_helper.from_array(np.array(high, dtype=np.float32), "hi"),
            numpy_helper.from_array(np.array(low, dtype=np.float32), "lo"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_relu6_chain_becomes_one_clip_with_the_same_values() -> None:
    model = _chain(0.0, 6.0)
    before = model.SerializeToString()
    assert fuse_relu6(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Clip"]
    assert {t.name for t in model.graph.initializer} == {"fuse_relu6/lo_0", "fuse_relu6/hi_0"}
    x = np.array([[-7.0, -0.0, 0.5], [5.999, 6.0, 1e9]], dtype=np.float32)
    old = _session(before).run(None, {"x": x})[0]
    new = _session(model.SerializeToString()).run(None, {"x": x})[0]
    assert np.array_equal(old, new)
    assert np.array_equal(new, np.array([[0.0, 0.0, 0.5], [5.999, 6.0, 6.0]], dtype=np.float32))


@pytest.mark.parametrize(("low", "high", "extra"), [(1.0, 6.0, False), (0.0, 6.0, True)])
def test_a_chain_is_left_alone_where_a_clip_would_differ(
    low: float, high: float, extra: bool
) -> None:
    model = _chain(low, high, extra)
    data = model.SerializeToString()
    assert fuse_relu6(model) == 0
    assert model.SerializeToString() == data
    assert fused_bytes(data) is data


@needs_faceres
def test_faceres_describes_real_faces_exactly_as_its_pinned_graph_does() -> None:
    data = FACERES.read_bytes()
    model = onnx.load_from_string(data)
    assert fuse_relu6(model) == 27  # every clip_by_value(relu) of the MobileNet
    assert not {"Min", "Max"} & {n.op_type for n in model.graph.node}
    engine = FaceEngine(EngineConfig())
    describer = engine.describer(FACERES_V1)
    assert isinstance(describer, OnnxDescriber)
    lfw = sorted((SHARED_DATA / "lfw" / "images").rglob("*.jpg"))[::997][:8]
    paths = [*lfw, SAMPLES / "two_people.jpg"]
    items = []
    for path in paths:
        image = engine.decode(path.read_bytes())
        items += [(image, _in_pixels(image, f)) for f in engine.detect(image)]
    assert len(items) >= len(paths)
    batch = model_input(describer.pre, describer.crops(items))
    pinned = _session(data).run(["descriptor"], {"image": batch})[0]
    fused = _session(model.SerializeToString()).run(["descriptor"], {"image": batch})[0]
    assert np.array_equal(pinned, fused)
    raw = describer.embed_crops(describer.crops(items))  # the engine's session: unit vectors
    unit = pinned / np.linalg.norm(pinned.astype(np.float64), axis=1, keepdims=True)
    assert np.array_equal(raw, unit.astype(np.float32))
