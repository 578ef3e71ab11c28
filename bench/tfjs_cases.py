"""Small synthetic TensorFlow.js graph models, one or a few ops each, for the converter's tests.

``bench/tfjs_equivalence.py --write-references`` runs each case in TensorFlow.js and stores the
graph, its weights, its input and tfjs's outputs in ``tests/engine/data/tfjs_op_cases.json``;
``tests/engine/test_tfjs_ops.py`` converts the stored graphs and compares onnxruntime's outputs
with tfjs's. The cases cover every op the converter maps and the variants the real models do not
use (odd sizes with SAME padding, depth multipliers, dilations, every StridedSlice mask, resize
modes, quantized weights, reductions that reorder axes...).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


def _attr(value: object) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int):
        return {"i": str(value)}
    if isinstance(value, float):
        return {"f": value}
    if isinstance(value, str):
        if value.startswith("DT_"):
            return {"type": value}
        return {"s": base64.b64encode(value.encode()).decode()}
    if isinstance(value, list | tuple):
        if all(isinstance(v, int) for v in value):
            return {"list": {"i": [str(v) for v in value]}}
        return {"list": {"s": [base64.b64encode(str(v).encode()).decode() for v in value]}}
    raise TypeError(f"no attribute encoding for {value!r}")


@dataclass
class GraphCase:
    """A graph model under construction: one NHWC (or other) float32 input named ``x``."""

    name: str
    input_shape: tuple[int, ...]
    input_low: float = -1.0
    input_high: float = 1.0
    nodes: list[dict[str, Any]] = field(default_factory=list)
    weights: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        dims = [{"size": "-1"}] + [{"size": str(d)} for d in self.input_shape[1:]]
        self.nodes.append(
            {
                "name": "x",
                "op": "Placeholder",
                "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {"dim": dims}}},
            }
        )

    def const(self, name: str, value: npt.ArrayLike, quant: str | None = None) -> str:
        array = np.asarray(value)
        dtype = "int32" if array.dtype.kind in "iu" else "float32"
        array = array.astype(np.int32 if dtype == "int32" else np.float32)
        spec: dict[str, Any] = {"name": name, "shape": list(array.shape), "dtype": dtype}
        if quant is None:
            data = array.astype(array.dtype.newbyteorder("<")).tobytes()
        elif quant == "float16":
            spec["quantization"] = {"dtype": "float16", "original_dtype": dtype}
            data = array.astype("<f2").tobytes()
        else:
            levels = 255 if quant == "uint8" else 65535
            low, high = float(array.min()), float(array.max())
            scale = (high - low) / levels or 1.0
            q = np.round((array.astype(np.float64) - low) / scale)
            spec["quantization"] = {"dtype": quant, "min": low, "scale": scale}
            data = q.astype("u1" if quant == "uint8" else "<u2").tobytes()
        tf_type = "DT_INT32" if dtype == "int32" else "DT_FLOAT"
        self.nodes.append({"name": name, "op": "Const", "attr": {"dtype": {"type": tf_type}}})
        self.weights.append((spec, data))
        return name

    def op(self, name: str, op: str, inputs: list[str], **attrs: object) -> str:
        node: dict[str, Any] = {"name": name, "op": op, "input": inputs}
        node["attr"] = {"T": {"type": "DT_FLOAT"}, **{k: _attr(v) for k, v in attrs.items()}}
        self.nodes.append(node)
        return name

    def out(self, *names: str) -> None:
        for n in names:
            self.outputs[n.replace("/", "_")] = n

    def document(self) -> tuple[dict[str, Any], bytes]:
        """The ``model.json`` object (weights in ``weights.bin``) and the weights' bytes."""
        doc = {
            "format": "graph-model",
            "generatedBy": "facegate bench/tfjs_cases.py",
            "convertedBy": "hand-written",
            "modelTopology": {"node": self.nodes, "library": {}, "versions": {"producer": 1}},
            "weightsManifest": [
                {"paths": ["weights.bin"], "weights": [spec for spec, _ in self.weights]}
            ],
        }
        return doc, b"".join(data for _, data in self.weights)

    def input_values(self, batch: int = 2) -> Array:
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        shape = (batch, *self.input_shape[1:])
        return rng.uniform(self.input_low, self.input_high, size=shape).astype(np.float32)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _w(seed: int, *shape: int, scale: float = 0.5) -> Array:
    return (_rng(seed).standard_normal(shape) * scale).astype(np.float32)


CONV = {"data_format": "NHWC", "dilations": [1, 1, 1, 1]}


def conv_padding() -> GraphCase:
    g = GraphCase("conv_padding", (1, 7, 9, 3))
    w = g.const("w", _w(1, 3, 3, 3, 4))
    b = g.const("b", _w(2, 4))
    g.op("same_s2", "Conv2D", ["x", w], padding="SAME", strides=[1, 2, 2, 1], **CONV)
    g.op("valid_s2", "Conv2D", ["x", w], padding="VALID", strides=[1, 2, 2, 1], **CONV)
    g.op("same_s1_dil2", "Conv2D", ["x", w], padding="SAME", strides=[1, 1, 1, 1],
         data_format="NHWC", dilations=[1, 2, 2, 1])  # fmt: skip
    g.op(
        "explicit", "Conv2D", ["x", w], padding="EXPLICIT", strides=[1, 2, 1, 1],
        explicit_paddings=[0, 0, 1, 2, 0, 1, 0, 0], **CONV,
    )  # fmt: skip
    g.op("bias", "BiasAdd", ["same_s2", b], data_format="NHWC")
    g.op("relu6", "Relu6", ["bias"])
    g.out("valid_s2", "same_s1_dil2", "explicit", "relu6")
    return g


def depthwise() -> GraphCase:
    g = GraphCase("depthwise", (1, 8, 7, 3))
    w2 = g.const("w2", _w(3, 3, 3, 3, 2))
    w1 = g.const("w1", _w(4, 3, 3, 3, 1))
    b = g.const("b", _w(5, 6))
    g.op("mult2_same_s2", "DepthwiseConv2dNative", ["x", w2], padding="SAME",
         strides=[1, 2, 2, 1], **CONV)  # fmt: skip
    g.op("dil2_valid", "DepthwiseConv2dNative", ["x", w1], padding="VALID",
         strides=[1, 1, 1, 1], data_format="NHWC", dilations=[1, 2, 2, 1])  # fmt: skip
    g.op(
        "fused", "FusedDepthwiseConv2dNative", ["x", w2, b], padding="SAME",
        strides=[1, 1, 1, 1], fused_ops=["BiasAdd", "Relu6"], num_args=1, **CONV,
    )  # fmt: skip
    g.out("mult2_same_s2", "dil2_valid", "fused")
    return g


def fused_conv() -> GraphCase:
    g = GraphCase("fused_conv", (1, 6, 6, 4))
    w = g.const("w", _w(6, 3, 3, 4, 5))
    b = g.const("b", _w(7, 5))
    alpha = g.const("alpha", np.abs(_w(8, 5)))
    common = {"padding": "SAME", "strides": [1, 1, 1, 1], "num_args": 1, **CONV}
    g.op("leaky", "_FusedConv2D", ["x", w, b], fused_ops=["BiasAdd", "LeakyRelu"],
         leakyrelu_alpha=0.1, **common)  # fmt: skip
    g.op("elu", "_FusedConv2D", ["x", w, b], fused_ops=["BiasAdd", "Elu"], **common)
    g.op("sigmoid", "_FusedConv2D", ["x", w, b], fused_ops=["BiasAdd", "Sigmoid"], **common)
    g.op("biasonly", "_FusedConv2D", ["x", w, b], fused_ops=["BiasAdd"], **common)
    prelu = {**common, "num_args": 2}
    g.op("prelu", "_FusedConv2D", ["x", w, b, alpha], fused_ops=["BiasAdd", "Prelu"], **prelu)
    g.out("leaky", "elu", "sigmoid", "biasonly", "prelu")
    return g


def quantized() -> GraphCase:
    g = GraphCase("quantized", (1, 5, 5, 2))
    common = {"padding": "VALID", "strides": [1, 1, 1, 1], **CONV}
    for quant in ("uint8", "uint16", "float16"):
        w = g.const(f"w_{quant}", _w(9, 3, 3, 2, 3), quant=quant)
        g.op(f"conv_{quant}", "Conv2D", ["x", w], **common)
        g.out(f"conv_{quant}")
    shape = g.const("shape", np.array([-1, 27], dtype=np.int32), quant="uint8")
    g.op("flat", "Reshape", ["conv_uint8", shape])
    g.out("flat")
    return g


def pools() -> GraphCase:
    g = GraphCase("pools", (1, 7, 7, 3))
    for op in ("MaxPool", "AvgPool"):
        for pad in ("SAME", "VALID"):
            name = f"{op}_{pad}".lower()
            g.op(name, op, ["x"], ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding=pad,
                 data_format="NHWC")  # fmt: skip
            g.out(name)
    g.op("avg_2x3", "AvgPool", ["x"], ksize=[1, 2, 3, 1], strides=[1, 1, 2, 1], padding="SAME",
         data_format="NHWC")  # fmt: skip
    g.out("avg_2x3")
    return g


def matmul() -> GraphCase:
    g = GraphCase("matmul", (1, 6))
    w = g.const("w", _w(10, 6, 4))
    wt = g.const("wt", _w(11, 4, 6))
    b = g.const("b", _w(12, 4))
    alpha = g.const("alpha", np.abs(_w(13, 4)))
    g.op("plain", "MatMul", ["x", w], transpose_a=False, transpose_b=False)
    g.op("trans_b", "MatMul", ["x", wt], transpose_a=False, transpose_b=True)
    g.op("fused_relu", "_FusedMatMul", ["x", w, b], fused_ops=["BiasAdd", "Relu"], num_args=1,
         transpose_a=False, transpose_b=False)  # fmt: skip
    g.op("fused_prelu", "_FusedMatMul", ["x", wt, b, alpha], fused_ops=["BiasAdd", "Prelu"],
         num_args=2, transpose_a=False, transpose_b=True)  # fmt: skip
    g.op("softmax", "Softmax", ["fused_relu"])
    g.op("logsoftmax", "LogSoftmax", ["plain"])
    g.out("trans_b", "fused_prelu", "softmax", "logsoftmax")
    return g


def strided_slices() -> GraphCase:
    g = GraphCase("strided_slices", (1, 6, 5, 4))

    def ss(name: str, begin: list[int], end: list[int], strides: list[int], **masks: int) -> None:
        b = g.const(f"{name}/begin", np.array(begin, dtype=np.int32))
        e = g.const(f"{name}/end", np.array(end, dtype=np.int32))
        s = g.const(f"{name}/strides", np.array(strides, dtype=np.int32))
        attrs = {
            k: masks.get(k, 0)
            for k in (
                "begin_mask",
                "end_mask",
                "ellipsis_mask",
                "new_axis_mask",
                "shrink_axis_mask",
            )
        }
        g.op(name, "StridedSlice", ["x", b, e, s], Index="DT_INT32", **attrs)
        g.out(name)

    ss("plain", [0, 1, 0, 1], [2, 5, 4, 3], [1, 2, 1, 1])
    ss("masks", [0, 1, 1, 0], [0, 0, 4, 0], [1, 1, 1, 1], begin_mask=0b1001, end_mask=0b1011)
    ss("negative_stride", [0, -1, 0, 0], [0, 0, 0, 0], [1, -2, 1, 1], begin_mask=0b1101,
       end_mask=0b1111)  # fmt: skip
    ss("shrink_channel", [0, 0, 0, 2], [0, 0, 0, 3], [1, 1, 1, 1], begin_mask=0b0111,
       end_mask=0b0111, shrink_axis_mask=0b1000)  # fmt: skip
    ss("shrink_last", [0, -1], [0, 0], [1, 1], begin_mask=0b01, end_mask=0b01,
       ellipsis_mask=0, shrink_axis_mask=0b10)  # fmt: skip
    ss("ellipsis", [0, 1], [0, 3], [1, 1], ellipsis_mask=0b01)
    ss("new_axis", [0, 0, 2], [0, 0, 4], [1, 1, 1], begin_mask=0b001, end_mask=0b001,
       new_axis_mask=0b010, ellipsis_mask=0)  # fmt: skip
    return g


def resizes() -> GraphCase:
    g = GraphCase("resizes", (1, 5, 6, 2))
    up = g.const("up", np.array([9, 11], dtype=np.int32))
    down = g.const("down", np.array([3, 4], dtype=np.int32))
    for size, size_name in ((up, "up"), (down, "down")):
        for mode, align, half in (
            ("legacy", False, False),
            ("align", True, False),
            ("half", False, True),
        ):
            name = f"bilinear_{size_name}_{mode}"
            g.op(name, "ResizeBilinear", ["x", size], align_corners=align, half_pixel_centers=half)
            g.out(name)
        for mode, half in (("legacy", False), ("half", True)):
            name = f"nearest_{size_name}_{mode}"
            g.op(name, "ResizeNearestNeighbor", ["x", size], align_corners=False,
                 half_pixel_centers=half)  # fmt: skip
            g.out(name)
    return g


def pads_and_shapes() -> GraphCase:
    g = GraphCase("pads_and_shapes", (1, 4, 5, 3))
    paddings = g.const("paddings", np.array([[0, 0], [1, 2], [2, 1], [0, 3]], dtype=np.int32))
    g.op("pad", "Pad", ["x", paddings], Tpaddings="DT_INT32")
    g.op("mirror", "MirrorPad", ["x", g.const("mp", np.array([[0, 0], [1, 2], [2, 1], [0, 0]],
         dtype=np.int32))], mode="REFLECT", Tpaddings="DT_INT32")  # fmt: skip
    g.op("padv2", "PadV2", ["x", paddings, g.const("fill", np.array(0.5, dtype=np.float32))],
         Tpaddings="DT_INT32")  # fmt: skip
    perm = g.const("perm", np.array([0, 3, 1, 2], dtype=np.int32))
    g.op("transpose", "Transpose", ["x", perm], Tperm="DT_INT32")
    g.op("reshape", "Reshape", ["x", g.const("rs", np.array([-1, 5, 12], dtype=np.int32))])
    g.op("expand", "ExpandDims", ["x", g.const("ed", np.array(-1, dtype=np.int32))])
    g.op("squeeze", "Squeeze", ["expand"], squeeze_dims=[4])
    g.op("concat_c", "ConcatV2", ["x", "x", g.const("ax3", np.array(3, dtype=np.int32))], N=2)
    g.op("concat_w", "ConcatV2", ["pad", "pad", g.const("axm2", np.array(-2, dtype=np.int32))], N=2)
    g.op("pack", "Pack", ["x", "x"], axis=1, N=2)
    g.out(
        "pad", "mirror", "padv2", "transpose", "reshape", "squeeze", "concat_c", "concat_w", "pack"
    )
    return g


def reductions() -> GraphCase:
    g = GraphCase("reductions", (1, 4, 5, 3))
    w = g.const("w", _w(14, 1, 1, 3, 3))
    # A convolution first, so the reductions read an NCHW value and exercise the axis mapping.
    g.op("conv", "Conv2D", ["x", w], padding="VALID", strides=[1, 1, 1, 1], **CONV)
    cases: list[tuple[str, list[int], bool]] = [
        ("Mean", [1, 2], False),
        ("Mean", [1, 2], True),
        ("Max", [1], False),
        ("Min", [3], True),
        ("Sum", [2, 3], False),
        ("Prod", [-1], False),
        ("Sum", [1], True),
    ]
    for i, (op, axes, keep) in enumerate(cases):
        name = f"{op.lower()}_{i}"
        axis = g.const(f"{name}/axes", np.array(axes, dtype=np.int32))
        g.op(name, op, ["conv", axis], keep_dims=keep, Tidx="DT_INT32")
        g.out(name)
    return g


def batch_norm() -> GraphCase:
    g = GraphCase("batch_norm", (1, 3, 4, 5))
    args = [
        g.const("scale", _w(15, 5)),
        g.const("offset", _w(16, 5)),
        g.const("mean", _w(17, 5)),
        g.const("var", np.abs(_w(18, 5)) + 0.1),
    ]
    g.op("bn", "FusedBatchNormV3", ["x", *args], epsilon=0.001, is_training=False,
         data_format="NHWC", U="DT_FLOAT")  # fmt: skip
    g.out("bn")
    return g


def elementwise() -> GraphCase:
    g = GraphCase("elementwise", (1, 3, 4, 2), input_low=0.1, input_high=2.0)
    c = g.const("c", _w(19, 2))
    s = g.const("s", np.array(1.5, dtype=np.float32))
    alpha = g.const("alpha", np.abs(_w(20, 1, 1, 2)))
    for op in ("Sub", "RealDiv", "Maximum", "Minimum", "Pow", "Mul", "AddV2", "Add"):
        g.op(op.lower(), op, ["x", c if op != "Pow" else s])
        g.out(op.lower())
    g.op("div_scalar_first", "RealDiv", [s, "x"])
    g.op("addn", "AddN", ["x", "x", "sub"], N=3)
    g.op("prelu", "Prelu", ["sub", alpha])
    g.op("leaky", "LeakyRelu", ["sub"], alpha=0.3)
    g.out("div_scalar_first", "addn", "prelu", "leaky")
    for op in (
        "Relu", "Relu6", "Elu", "Selu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Log", "Sqrt",
        "Rsqrt", "Square", "Reciprocal", "Floor", "Ceil", "Softplus",
    ):  # fmt: skip
        source = "x" if op in ("Log", "Sqrt", "Rsqrt", "Reciprocal") else "sub"
        g.op(op.lower(), op, [source])
        g.out(op.lower())
    return g


def layouts() -> GraphCase:
    """Convolutions feeding element-wise ops, concatenations and reshapes: the NCHW values'
    reuse across consumers, with and without a transpose back."""
    g = GraphCase("layouts", (1, 6, 6, 3))
    common = {"padding": "SAME", "strides": [1, 1, 1, 1], **CONV}
    a = g.op("a", "Conv2D", ["x", g.const("wa", _w(21, 3, 3, 3, 4))], **common)
    b = g.op("b", "Conv2D", ["x", g.const("wb", _w(22, 1, 1, 3, 4))], **common)
    g.op("scaled", "Mul", [a, g.const("k", _w(23, 4))])
    g.op("sum", "AddV2", ["scaled", b])
    g.op("act", "Prelu", ["sum", g.const("alpha", np.abs(_w(24, 4)))])
    g.op("pooled", "Mean", ["act", g.const("hw", np.array([1, 2], dtype=np.int32))],
         keep_dims=True, Tidx="DT_INT32")  # fmt: skip
    g.op("gate", "Sigmoid", ["pooled"])
    g.op("gated", "Mul", ["act", "gate"])
    g.op("c", "Conv2D", ["gated", g.const("wc", _w(25, 3, 3, 4, 2))], **common)
    g.op("cat", "ConcatV2", ["c", "x", g.const("ax", np.array(3, dtype=np.int32))], N=2)
    g.op("padc", "Pad", ["cat", g.const("pc", np.array([[0, 0], [0, 0], [0, 0], [0, 3]],
         dtype=np.int32))], Tpaddings="DT_INT32")  # fmt: skip
    g.op("flat", "Reshape", ["padc", g.const("fs", np.array([-1, 288], dtype=np.int32))])
    g.out("sum", "flat", "gated")
    return g


CASES: tuple[Callable[[], GraphCase], ...] = (
    conv_padding,
    depthwise,
    fused_conv,
    quantized,
    pools,
    matmul,
    strided_slices,
    resizes,
    pads_and_shapes,
    reductions,
    batch_norm,
    elementwise,
    layouts,
)


def case_documents() -> list[dict[str, Any]]:
    """Every case as stored in the reference file (without tfjs's outputs)."""
    out = []
    for make in CASES:
        case = make()
        doc, weights = case.document()
        values = case.input_values()
        out.append(
            {
                "name": case.name,
                "model": doc,
                "weights_b64": base64.b64encode(weights).decode(),
                "input_shape": list(values.shape),
                "input": [float(v) for v in values.reshape(-1)],
                "outputs": dict(case.outputs),
            }
        )
    json.dumps(out)  # fails early if something is not JSON
    return out
