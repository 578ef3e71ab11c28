"""Handlers of the neural-network ops: convolutions, pooling, matrices, batch normalisation,
element-wise ops, reductions and softmax (see :mod:`.tfjs_ops`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from facegate.engine.convert.onnx_values import TO_NCHW, GraphBuilder, Value
from facegate.engine.convert.ops_base import (
    NHWC_TO_NCHW_AXIS,
    Array,
    Handler,
    axes_of,
    require_args,
    static,
    unsupported,
)
from facegate.engine.convert.tfjs_graph import TfNode


def _as_rank4_const(value: Array) -> Array | None:
    """A constant broadcast against a rank-4 tensor, written with rank 4 (or None if > 4)."""
    if value.ndim > 4:
        return None
    return value.reshape((1,) * (4 - value.ndim) + value.shape)


def _cf_operands(b: GraphBuilder, args: list[Value], hint: str) -> list[str] | None:
    """The operands of an element-wise op in NCHW, if that is where it should run: some operand
    already exists in NCHW, and every other is rank 4 or a constant of rank <= 4."""
    if not any(a.has_cf and a.const is None for a in args):
        return None
    for a in args:
        if a.const is None and a.rank != 4:
            return None
        if a.const is not None and a.const.ndim > 4:
            return None
    names: list[str] = []
    for i, a in enumerate(args):
        if a.const is not None and a.rank != 4:
            expanded = _as_rank4_const(a.const)
            assert expanded is not None
            names.append(b.initializer(expanded.transpose(TO_NCHW), f"{hint}/arg{i}/nchw"))
        else:
            names.append(b.cf(a, f"{hint}/arg{i}"))
    return names


def _broadcast_rank(args: Sequence[Value]) -> int | None:
    ranks = [a.rank for a in args]
    if any(r is None for r in ranks):
        return None
    return max(r for r in ranks if r is not None)


def elementwise(onnx_op: str, **attrs: Any) -> Handler:
    """An element-wise op (numpy broadcasting, as TF's), in NCHW when its inputs are."""

    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        if not args:
            raise node.error("has no inputs")
        rank = _broadcast_rank(args)
        cf = _cf_operands(b, args, node.name) if rank == 4 else None
        if cf is not None:
            return [Value(4, cf=b.op(onnx_op, cf, f"{node.name}/nchw", **attrs))]
        inputs = [b.tf(a, f"{node.name}/arg{i}") for i, a in enumerate(args)]
        return [Value(rank, tf=b.op(onnx_op, inputs, node.name, **attrs))]

    return handle


def unary_chain(build: Callable[[GraphBuilder, str, str], str]) -> Handler:
    """A unary op built from several ONNX nodes by ``build(builder, x, hint)``."""

    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        require_args(node, args, 1)
        x = args[0]
        if x.rank == 4 and x.has_cf:
            return [Value(4, cf=build(b, b.cf(x, node.name), f"{node.name}/nchw"))]
        return [Value(x.rank, tf=build(b, b.tf(x, node.name), node.name))]

    return handle


def relu6(b: GraphBuilder, x: str, hint: str) -> str:
    return b.op("Clip", [x, b.scalar(0.0, f"{hint}/min"), b.scalar(6.0, f"{hint}/max")], hint)


def rsqrt(b: GraphBuilder, x: str, hint: str) -> str:
    return b.op("Reciprocal", [b.op("Sqrt", [x], f"{hint}/sqrt")], hint)


def square(b: GraphBuilder, x: str, hint: str) -> str:
    return b.op("Mul", [x, x], hint)


def leaky_relu(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    alpha = node.attr_float("alpha", 0.2)
    return unary_chain(lambda b, x, h: b.op("LeakyRelu", [x], h, alpha=alpha))(b, node, args)


def identity(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    require_args(node, args, 1)
    return [args[0]]


# -- convolution and pooling --------------------------------------------------------------------


def _nhwc_pairs(node: TfNode, key: str) -> tuple[int, int]:
    values = node.attr_ints(key) or (1, 1, 1, 1)
    if len(values) != 4 or values[0] != 1 or values[3] != 1:
        raise unsupported(node, f"{key}={list(values)} (only spatial {key} are supported)")
    return values[1], values[2]


def _padding(
    node: TfNode,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilations: tuple[int, int] = (1, 1),
) -> dict[str, Any]:
    if node.attr_str("data_format", "NHWC") != "NHWC":
        raise unsupported(node, f"data_format {node.attr_str('data_format')}")
    padding = node.attr_str("padding")
    if padding == "VALID":
        return {"pads": [0, 0, 0, 0]}
    if padding == "SAME":
        if strides == (1, 1):
            # At stride 1 TF pads (k - 1) * d in all, the odd pixel at the end, whatever the
            # input size; explicit pads also serve dilations, which ORT's SAME_UPPER refuses
            # (TF allows dilations only at stride 1).
            total = [(k - 1) * d for k, d in zip(kernel, dilations, strict=True)]
            return {"pads": [total[0] // 2, total[1] // 2, total[0] - total[0] // 2,
                             total[1] - total[1] // 2]}  # fmt: skip
        if dilations != (1, 1):
            raise unsupported(node, "SAME padding with both strides and dilations")
        return {"auto_pad": "SAME_UPPER"}  # TF's SAME: the odd pixel goes to the end
    if padding == "EXPLICIT":
        p = node.attr_ints("explicit_paddings")
        if len(p) != 8 or any(p[i] for i in (0, 1, 6, 7)):
            raise unsupported(node, f"explicit_paddings {list(p)}")
        return {"pads": [p[2], p[4], p[3], p[5]]}
    raise unsupported(node, f"padding {padding!r}")


def _fused_parts(
    node: TfNode, args: list[Value], first_extra: int
) -> tuple[Value | None, str | None, Value | None]:
    """(bias, activation, prelu alpha) of a grappler-fused node."""
    fused = node.attr_strs("fused_ops")
    extras = args[first_extra:]
    bias: Value | None = None
    activation: str | None = None
    rest = list(fused)
    if rest and rest[0] == "BiasAdd":
        rest.pop(0)
        if not extras:
            raise node.error("fuses BiasAdd without a bias input")
        bias, extras = extras[0], extras[1:]
    elif rest and rest[0] in ("FusedBatchNorm", "FusedBatchNormV3"):
        raise unsupported(node, "FusedBatchNorm fused into it (TensorFlow.js refuses it too)")
    if rest:
        activation = rest.pop(0)
    if rest:
        raise unsupported(node, f"fused_ops {list(fused)}")
    alpha: Value | None = None
    if activation == "Prelu":
        if not extras:
            raise node.error("fuses Prelu without an alpha input")
        alpha = extras[0]
    return bias, activation, alpha


def _activation(
    b: GraphBuilder,
    node: TfNode,
    x: str,
    activation: str | None,
    alpha: Value | None,
    *,
    nchw: bool,
    hint: str,
) -> str:
    """Apply a fused activation to ``x`` (NCHW rank 4 if ``nchw``, else TF layout)."""
    if activation is None:
        return x
    if activation == "Relu":
        return b.op("Relu", [x], hint)
    if activation == "Relu6":
        return relu6(b, x, hint)
    if activation == "Elu":
        return b.op("Elu", [x], hint, alpha=1.0)
    if activation == "Sigmoid":
        return b.op("Sigmoid", [x], hint)
    if activation == "Tanh":
        return b.op("Tanh", [x], hint)
    if activation == "LeakyRelu":
        return b.op("LeakyRelu", [x], hint, alpha=node.attr_float("leakyrelu_alpha", 0.2))
    if activation == "Prelu":
        assert alpha is not None
        if not nchw:
            return b.op("PRelu", [x, b.tf(alpha, f"{hint}/alpha")], hint)
        slope = static(node, alpha, "PReLU alpha").astype(np.float32)
        expanded = _as_rank4_const(slope)
        if expanded is None:
            raise unsupported(node, f"PReLU alpha of shape {slope.shape}")
        slope_cf = b.initializer(expanded.transpose(TO_NCHW), f"{hint}/alpha")
        return b.op("PRelu", [x, slope_cf], hint)
    raise unsupported(node, f"fused activation {activation}")


def conv(depthwise: bool, fused: bool) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        require_args(node, args, 3 if fused else 2)
        bias, activation, alpha = _fused_parts(node, args, 2) if fused else (None, None, None)
        x, filt = args[0], args[1]
        if x.rank != 4:
            raise node.error(f"convolves a rank-{x.rank} input")
        w = static(node, filt, "filter").astype(np.float32)
        if w.ndim != 4:
            raise node.error(f"has a filter of shape {w.shape}")
        kh, kw, cin, cout = w.shape
        if depthwise:
            # TF output channel c * multiplier + m reads filter[:, :, c, m].
            weights = w.reshape(kh, kw, cin * cout).transpose(2, 0, 1)[:, None, :, :]
            group = cin
        else:
            weights = w.transpose(3, 2, 0, 1)
            group = 1
        strides = _nhwc_pairs(node, "strides")
        dilations = _nhwc_pairs(node, "dilations")
        attrs: dict[str, Any] = {
            "kernel_shape": [kh, kw],
            "strides": list(strides),
            "dilations": list(dilations),
            "group": group,
            **_padding(node, (kh, kw), strides, dilations),
        }
        inputs = [b.cf(x, f"{node.name}/x"), b.initializer(weights, f"{node.name}/W")]
        if bias is not None:
            inputs.append(
                b.initializer(
                    static(node, bias, "bias").astype(np.float32).reshape(-1), f"{node.name}/B"
                )
            )
        y = b.op("Conv", inputs, f"{node.name}/conv", **attrs)
        y = _activation(b, node, y, activation, alpha, nchw=True, hint=f"{node.name}/nchw")
        return [Value(4, cf=y)]

    return handle


def pool(onnx_op: str) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        require_args(node, args, 1)
        if args[0].rank != 4:
            raise node.error(f"pools a rank-{args[0].rank} input")
        kernel = _nhwc_pairs(node, "ksize")
        strides = _nhwc_pairs(node, "strides")
        attrs = {
            "kernel_shape": list(kernel),
            "strides": list(strides),
            **_padding(node, kernel, strides),
        }
        y = b.op(onnx_op, [b.cf(args[0], f"{node.name}/x")], f"{node.name}/nchw", **attrs)
        return [Value(4, cf=y)]

    return handle


def fused_batch_norm(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    """Inference-mode batch normalisation folded into a multiply and an add per channel."""
    require_args(node, args, 5)
    if node.attr_bool("is_training", False):
        raise unsupported(node, "is_training=true")
    if node.attr_str("data_format", "NHWC") != "NHWC":
        raise unsupported(node, f"data_format {node.attr_str('data_format')}")
    scale, offset, mean, var = (
        static(node, a, what).astype(np.float64)
        for a, what in zip(args[1:5], ("scale", "offset", "mean", "variance"), strict=True)
    )
    factor = scale / np.sqrt(var + node.attr_float("epsilon", 1e-3))
    mul = Value(1, const=factor.astype(np.float32))
    add = Value(1, const=(offset - mean * factor).astype(np.float32))
    scaled = elementwise("Mul")(b, _renamed(node, "/scale"), [args[0], mul])[0]
    return elementwise("Add")(b, node, [scaled, add])


def _renamed(node: TfNode, suffix: str) -> TfNode:
    return TfNode(node.name + suffix, node.op, node.inputs, node.attrs)


def matmul(fused: bool) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        require_args(node, args, 3 if fused else 2)
        a, w = args[0], args[1]
        if a.rank != 2 or w.rank != 2:
            raise unsupported(node, f"MatMul of ranks {a.rank} and {w.rank} (only 2-D)")
        bias, activation, alpha = _fused_parts(node, args, 2) if fused else (None, None, None)
        inputs = [b.tf(a, f"{node.name}/a"), b.tf(w, f"{node.name}/b")]
        attrs = {
            "transA": int(node.attr_bool("transpose_a")),
            "transB": int(node.attr_bool("transpose_b")),
        }
        if bias is not None:
            inputs.append(b.tf(bias, f"{node.name}/bias"))
        y = b.op("Gemm", inputs, f"{node.name}/gemm", **attrs)
        y = _activation(b, node, y, activation, alpha, nchw=False, hint=node.name)
        return [Value(2, tf=y)]

    return handle


def reduce(onnx_op: str, axes_as_input: bool = False) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        require_args(node, args, 2)
        x = args[0]
        axes = sorted(set(axes_of(node, args[1], x.rank)))
        keep = node.attr_bool("keep_dims", False)
        rank = None if x.rank is None else (x.rank if keep else x.rank - len(axes))
        if not axes:
            return [x]
        use_cf = False
        if x.rank == 4 and x.has_cf:
            remaining = [a for a in range(4) if a not in axes]
            in_cf = sorted(remaining, key=lambda a: NHWC_TO_NCHW_AXIS[a])
            use_cf = keep or in_cf == remaining
        source = b.cf(x, node.name) if use_cf else b.tf(x, node.name)
        used = sorted(NHWC_TO_NCHW_AXIS[a] for a in axes) if use_cf else axes
        hint = f"{node.name}/nchw" if use_cf and keep else node.name
        if axes_as_input:
            y = b.op(onnx_op, [source, b.ints(used, f"{hint}/axes")], hint, keepdims=int(keep))
        else:
            y = b.op(onnx_op, [source], hint, axes=used, keepdims=int(keep))
        if use_cf and keep:
            return [Value(4, cf=y)]
        return [Value(rank, tf=y)]

    return handle


def softmax(onnx_op: str) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        require_args(node, args, 1)
        return [
            Value(args[0].rank, tf=b.op(onnx_op, [b.tf(args[0], node.name)], node.name, axis=-1))
        ]

    return handle
