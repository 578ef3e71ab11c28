"""TensorFlow ops as ONNX nodes: one handler per op, TensorFlow's semantics exactly.

Each handler receives the node and its input :class:`~.onnx_values.Value` s and returns the
node's output values. Semantics follow TensorFlow's op definitions as TensorFlow.js executes them
(``tfjs-converter/src/operations/executors``, ``tfjs-core/src/ops``); where ONNX differs the
handler says how it bridges the gap:

* Convolutions: TF filters are ``[kh, kw, in, out]`` (depthwise ``[kh, kw, in, multiplier]``,
  output channel ``c * multiplier + m``); ONNX's are ``[out, in/group, kh, kw]``. ``SAME``
  padding puts the odd pixel at the end, which is ONNX's ``auto_pad=SAME_UPPER`` (written as
  explicit pads at stride 1, where they do not depend on the input size, so dilations work);
  ``EXPLICIT`` reads ``explicit_paddings``. TF's average pooling never counts padding (ONNX
  ``count_include_pad=0``, the default).
* Fused ops (grappler's ``_FusedConv2D``, ``FusedDepthwiseConv2dNative``, ``_FusedMatMul``):
  ``fused_ops`` is ``[BiasAdd]``, ``[BiasAdd, activation]`` or ``[activation]`` with the bias and
  then the PReLU alpha as extra inputs (``num_args``); activations Relu, Relu6, Elu, Prelu,
  LeakyRelu (``leakyrelu_alpha``, default 0.2), Sigmoid and Tanh. ``FusedBatchNorm`` inside a
  fused convolution is refused, as TensorFlow.js refuses it.
* ``StridedSlice``: begin, end and strides must be constants; all five masks are supported
  (ellipsis, new axis, shrink axis, begin, end).
* Reductions, ``ConcatV2``, ``Pad``: axes and paddings must be constants; negative axes count
  from the end.
* ``Reshape``: the shape must be a constant without zeros (ONNX reads 0 as "keep this
  dimension", TF as an empty dimension).

An op without a handler, or an attribute value a handler does not support, raises
:class:`UnsupportedOpError` naming the op and the node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from onnx import TensorProto

from facegate.engine.convert.onnx_values import TO_NCHW, GraphBuilder, Value
from facegate.engine.convert.tfjs_graph import TF_DTYPES, TfjsFormatError, TfNode

Array = npt.NDArray[Any]
Handler = Callable[[GraphBuilder, TfNode, list[Value]], list[Value]]

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


class UnsupportedOpError(TfjsFormatError):
    """The graph uses an op (or an op's variant) the converter does not translate."""


def _unsupported(node: TfNode, what: str) -> UnsupportedOpError:
    return UnsupportedOpError(
        f"TensorFlow op {node.op} (node {node.name!r}) is not supported by the converter: {what}."
    )


def static(node: TfNode, value: Value, what: str) -> Array:
    """The constant value of an input that must be known when converting."""
    if value.const is None:
        raise _unsupported(node, f"its {what} must be a constant")
    return value.const


def _static_ints(node: TfNode, value: Value, what: str) -> list[int]:
    return [int(v) for v in static(node, value, what).reshape(-1)]


def _args(node: TfNode, args: list[Value], count: int) -> None:
    if len(args) < count:
        raise node.error(f"has {len(args)} inputs, needs {count}")


# -- layout helpers -----------------------------------------------------------------------------


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


def _unary_chain(build: Callable[[GraphBuilder, str, str], str]) -> Handler:
    """A unary op built from several ONNX nodes by ``build(builder, x, hint)``."""

    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        _args(node, args, 1)
        x = args[0]
        if x.rank == 4 and x.has_cf:
            return [Value(4, cf=build(b, b.cf(x, node.name), f"{node.name}/nchw"))]
        return [Value(x.rank, tf=build(b, b.tf(x, node.name), node.name))]

    return handle


def _relu6(b: GraphBuilder, x: str, hint: str) -> str:
    return b.op("Clip", [x, b.scalar(0.0, f"{hint}/min"), b.scalar(6.0, f"{hint}/max")], hint)


def _rsqrt(b: GraphBuilder, x: str, hint: str) -> str:
    return b.op("Reciprocal", [b.op("Sqrt", [x], f"{hint}/sqrt")], hint)


def _square(b: GraphBuilder, x: str, hint: str) -> str:
    return b.op("Mul", [x, x], hint)


def _leaky_relu(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    alpha = node.attr_float("alpha", 0.2)
    return _unary_chain(lambda b, x, h: b.op("LeakyRelu", [x], h, alpha=alpha))(b, node, args)


def _identity(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _args(node, args, 1)
    return [args[0]]


# -- convolution and pooling --------------------------------------------------------------------


def _nhwc_pairs(node: TfNode, key: str) -> tuple[int, int]:
    values = node.attr_ints(key) or (1, 1, 1, 1)
    if len(values) != 4 or values[0] != 1 or values[3] != 1:
        raise _unsupported(node, f"{key}={list(values)} (only spatial {key} are supported)")
    return values[1], values[2]


def _padding(
    node: TfNode,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilations: tuple[int, int] = (1, 1),
) -> dict[str, Any]:
    if node.attr_str("data_format", "NHWC") != "NHWC":
        raise _unsupported(node, f"data_format {node.attr_str('data_format')}")
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
            raise _unsupported(node, "SAME padding with both strides and dilations")
        return {"auto_pad": "SAME_UPPER"}  # TF's SAME: the odd pixel goes to the end
    if padding == "EXPLICIT":
        p = node.attr_ints("explicit_paddings")
        if len(p) != 8 or any(p[i] for i in (0, 1, 6, 7)):
            raise _unsupported(node, f"explicit_paddings {list(p)}")
        return {"pads": [p[2], p[4], p[3], p[5]]}
    raise _unsupported(node, f"padding {padding!r}")


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
        raise _unsupported(node, "FusedBatchNorm fused into it (TensorFlow.js refuses it too)")
    if rest:
        activation = rest.pop(0)
    if rest:
        raise _unsupported(node, f"fused_ops {list(fused)}")
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
        return _relu6(b, x, hint)
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
            raise _unsupported(node, f"PReLU alpha of shape {slope.shape}")
        slope_cf = b.initializer(expanded.transpose(TO_NCHW), f"{hint}/alpha")
        return b.op("PRelu", [x, slope_cf], hint)
    raise _unsupported(node, f"fused activation {activation}")


def _conv(depthwise: bool, fused: bool) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        _args(node, args, 3 if fused else 2)
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


def _pool(onnx_op: str) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        _args(node, args, 1)
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


def _fused_batch_norm(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    """Inference-mode batch normalisation folded into a multiply and an add per channel."""
    _args(node, args, 5)
    if node.attr_bool("is_training", False):
        raise _unsupported(node, "is_training=true")
    if node.attr_str("data_format", "NHWC") != "NHWC":
        raise _unsupported(node, f"data_format {node.attr_str('data_format')}")
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


# -- matrices, reductions, shapes ---------------------------------------------------------------


def _matmul(fused: bool) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        _args(node, args, 3 if fused else 2)
        a, w = args[0], args[1]
        if a.rank != 2 or w.rank != 2:
            raise _unsupported(node, f"MatMul of ranks {a.rank} and {w.rank} (only 2-D)")
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


def _axes(node: TfNode, value: Value, rank: int | None, what: str = "axes") -> list[int]:
    axes = _static_ints(node, value, what)
    if rank is None:
        if any(a < 0 for a in axes):
            raise _unsupported(node, "negative axes on a tensor of unknown rank")
        return axes
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise node.error(f"has axis {a} for a rank-{rank} tensor")
        out.append(a % rank)
    return out


def _reduce(onnx_op: str, axes_as_input: bool = False) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        _args(node, args, 2)
        x = args[0]
        axes = sorted(set(_axes(node, args[1], x.rank)))
        keep = node.attr_bool("keep_dims", False)
        rank = None if x.rank is None else (x.rank if keep else x.rank - len(axes))
        if not axes:
            return [x]
        use_cf = False
        if x.rank == 4 and x.has_cf:
            remaining = [a for a in range(4) if a not in axes]
            in_cf = sorted(remaining, key=lambda a: _NHWC_TO_NCHW_AXIS[a])
            use_cf = keep or in_cf == remaining
        source = b.cf(x, node.name) if use_cf else b.tf(x, node.name)
        used = sorted(_NHWC_TO_NCHW_AXIS[a] for a in axes) if use_cf else axes
        hint = f"{node.name}/nchw" if use_cf and keep else node.name
        if axes_as_input:
            y = b.op(onnx_op, [source, b.ints(used, f"{hint}/axes")], hint, keepdims=int(keep))
        else:
            y = b.op(onnx_op, [source], hint, axes=used, keepdims=int(keep))
        if use_cf and keep:
            return [Value(4, cf=y)]
        return [Value(rank, tf=y)]

    return handle


def _softmax(onnx_op: str) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        _args(node, args, 1)
        return [
            Value(args[0].rank, tf=b.op(onnx_op, [b.tf(args[0], node.name)], node.name, axis=-1))
        ]

    return handle


def _reshape(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _args(node, args, 2)
    shape = _static_ints(node, args[1], "shape")
    if 0 in shape:
        raise _unsupported(node, f"shape {shape} with a zero dimension")
    if shape.count(-1) > 1:
        raise node.error(f"has shape {shape} with more than one -1")
    x = b.tf(args[0], node.name)
    return [
        Value(len(shape), tf=b.op("Reshape", [x, b.ints(shape, f"{node.name}/shape")], node.name))
    ]


def _squeeze(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _args(node, args, 1)
    x = args[0]
    dims = list(node.attr_ints("squeeze_dims")) or list(node.attr_ints("axis"))
    if not dims:
        raise _unsupported(node, "Squeeze without squeeze_dims (needs static shapes)")
    if x.rank is None:
        raise _unsupported(node, "Squeeze of a tensor of unknown rank")
    axes = sorted({d % x.rank for d in dims})
    y = b.op("Squeeze", [b.tf(x, node.name), b.ints(axes, f"{node.name}/axes")], node.name)
    return [Value(x.rank - len(axes), tf=y)]


def _expand_dims(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _args(node, args, 2)
    x = args[0]
    dims = _static_ints(node, args[1], "dim")
    if len(dims) != 1 or x.rank is None:
        raise _unsupported(node, f"dim {dims} on rank {x.rank}")
    axis = dims[0] % (x.rank + 1)  # TF: -1 appends, as ONNX's -1 of the output rank
    y = b.op("Unsqueeze", [b.tf(x, node.name), b.ints([axis], f"{node.name}/axes")], node.name)
    return [Value(x.rank + 1, tf=y)]


def _concat(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _args(node, args, 2)
    *parts, axis_value = args
    rank = parts[0].rank
    if any(p.rank != rank for p in parts):
        raise node.error("concatenates tensors of different ranks")
    (axis,) = _axes(node, axis_value, rank, "axis")
    if rank == 4 and any(p.has_cf for p in parts):
        names = [b.cf(p, f"{node.name}/arg{i}") for i, p in enumerate(parts)]
        y = b.op("Concat", names, f"{node.name}/nchw", axis=_NHWC_TO_NCHW_AXIS[axis])
        return [Value(4, cf=y)]
    names = [b.tf(p, f"{node.name}/arg{i}") for i, p in enumerate(parts)]
    return [Value(rank, tf=b.op("Concat", names, node.name, axis=axis))]


def _pack(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _args(node, args, 1)
    rank = args[0].rank
    if rank is None or any(a.rank != rank for a in args):
        raise _unsupported(node, "Pack of tensors of unknown or different ranks")
    axis = node.attr_int("axis", 0) % (rank + 1)
    axes = b.ints([axis], f"{node.name}/axes")
    parts = [
        b.op("Unsqueeze", [b.tf(a, f"{node.name}/arg{i}"), axes], f"{node.name}/arg{i}/expanded")
        for i, a in enumerate(args)
    ]
    return [Value(rank + 1, tf=b.op("Concat", parts, node.name, axis=axis))]


def _pad(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _args(node, args, 2)
    x = args[0]
    paddings = static(node, args[1], "paddings").astype(np.int64)
    if x.rank is None or paddings.shape != (x.rank, 2):
        raise node.error(f"has paddings of shape {paddings.shape} for rank {x.rank}")
    attrs: dict[str, Any] = {"mode": "constant"}
    inputs_extra: list[str] = []
    if node.op == "MirrorPad":
        mode = node.attr_str("mode")
        if mode != "REFLECT":
            raise _unsupported(node, f"mode {mode} (only REFLECT)")
        attrs["mode"] = "reflect"
    elif node.op == "PadV2":
        _args(node, args, 3)
        fill = static(node, args[2], "constant value").reshape(-1)
        inputs_extra = [b.initializer(fill.reshape(()), f"{node.name}/value")]
    use_cf = x.rank == 4 and x.has_cf
    order = list(TO_NCHW) if use_cf else list(range(x.rank))
    pads = [int(paddings[a, 0]) for a in order] + [int(paddings[a, 1]) for a in order]
    if min(pads) < 0:
        raise node.error(f"has negative paddings {pads}")
    hint = f"{node.name}/nchw" if use_cf else node.name
    source = b.cf(x, node.name) if use_cf else b.tf(x, node.name)
    y = b.op("Pad", [source, b.ints(pads, f"{hint}/pads"), *inputs_extra], hint, **attrs)
    return [Value(4, cf=y)] if use_cf else [Value(x.rank, tf=y)]


def _transpose(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _args(node, args, 2)
    perm = _static_ints(node, args[1], "perm")
    y = b.op("Transpose", [b.tf(args[0], node.name)], node.name, perm=perm)
    return [Value(len(perm), tf=y)]


def _cast(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    _args(node, args, 1)
    target = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32, "bool": TensorProto.BOOL}
    dst = TF_DTYPES.get(node.attr_type("DstT") or "", "")
    if dst not in target:
        raise _unsupported(node, f"cast to {node.attr_type('DstT')}")
    return [
        Value(args[0].rank, tf=b.op("Cast", [b.tf(args[0], node.name)], node.name, to=target[dst]))
    ]


def _strided_slice(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    """TF's StridedSlice as ONNX Slice, then Squeeze (shrink axes), then Unsqueeze (new axes)."""
    _args(node, args, 4)
    x = args[0]
    if x.rank is None:
        raise _unsupported(node, "StridedSlice of a tensor of unknown rank")
    begin = _static_ints(node, args[1], "begin")
    end = _static_ints(node, args[2], "end")
    strides = _static_ints(node, args[3], "strides")
    if not len(begin) == len(end) == len(strides):
        raise node.error("has begin, end and strides of different lengths")
    masks = {k: node.attr_int(k, 0) for k in ("begin_mask", "end_mask", "ellipsis_mask")}
    new_axis = node.attr_int("new_axis_mask", 0)
    shrink = node.attr_int("shrink_axis_mask", 0)
    n = len(begin)
    if bin(masks["ellipsis_mask"]).count("1") > 1:
        raise node.error("has more than one ellipsis")
    real = sum(
        1 for i in range(n) if not (new_axis >> i) & 1 and not (masks["ellipsis_mask"] >> i) & 1
    )
    starts: list[int] = []
    ends: list[int] = []
    axes: list[int] = []
    steps: list[int] = []
    squeeze: list[int] = []
    unsqueeze: list[int] = []
    dim = 0  # the input dimension the next spec entry addresses
    out = 0  # the output dimension it produces
    for i in range(n):
        if (masks["ellipsis_mask"] >> i) & 1:
            covered = x.rank - real
            dim += covered
            out += covered
            continue
        if (new_axis >> i) & 1:
            unsqueeze.append(out)
            out += 1
            continue
        if dim >= x.rank:
            raise node.error(f"slices {n} dimensions of a rank-{x.rank} tensor")
        step = strides[i]
        if step == 0:
            raise node.error("has a zero stride")
        if (shrink >> i) & 1:
            start = begin[i]
            starts.append(start)
            ends.append(start + 1 if start != -1 else INT64_MAX)
            steps.append(1)
            axes.append(dim)
            squeeze.append(dim)
        else:
            if (masks["begin_mask"] >> i) & 1:
                starts.append(0 if step > 0 else INT64_MAX)
            else:
                starts.append(begin[i])
            if (masks["end_mask"] >> i) & 1:
                ends.append(INT64_MAX if step > 0 else INT64_MIN)
            else:
                ends.append(end[i])
            steps.append(step)
            axes.append(dim)
            out += 1
        dim += 1
    y = b.tf(x, node.name)
    y = b.op(
        "Slice",
        [
            y,
            b.ints(starts, f"{node.name}/starts"),
            b.ints(ends, f"{node.name}/ends"),
            b.ints(axes, f"{node.name}/axes"),
            b.ints(steps, f"{node.name}/steps"),
        ],
        f"{node.name}/slice" if squeeze or unsqueeze else node.name,
    )
    rank = x.rank
    if squeeze:
        hint = f"{node.name}/squeeze" if unsqueeze else node.name
        y = b.op("Squeeze", [y, b.ints(squeeze, f"{node.name}/squeeze_axes")], hint)
        rank -= len(squeeze)
    if unsqueeze:
        y = b.op("Unsqueeze", [y, b.ints(unsqueeze, f"{node.name}/new_axes")], node.name)
        rank += len(unsqueeze)
    return [Value(rank, tf=y)]


def _resize(mode: str) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        _args(node, args, 2)
        x = args[0]
        if x.rank != 4:
            raise node.error(f"resizes a rank-{x.rank} input")
        size = _static_ints(node, args[1], "size")
        if len(size) != 2 or min(size) < 1:
            raise node.error(f"has size {size}")
        align = node.attr_bool("align_corners")
        half = node.attr_bool("half_pixel_centers")
        if align and half:
            raise node.error("sets both align_corners and half_pixel_centers")
        attrs: dict[str, Any] = {"mode": mode}
        if mode == "linear":
            attrs["coordinate_transformation_mode"] = (
                "align_corners" if align else "half_pixel" if half else "asymmetric"
            )
        else:
            if align:
                raise _unsupported(node, "nearest-neighbour resize with align_corners")
            # TF: floor(x * scale) legacy, or floor((x + 0.5) * scale) with half-pixel centres.
            attrs["coordinate_transformation_mode"] = (
                "tf_half_pixel_for_nn" if half else "asymmetric"
            )
            attrs["nearest_mode"] = "floor"
        xc = b.cf(x, f"{node.name}/x")
        batch_channels = b.op(
            "Slice",
            [
                b.op("Shape", [xc], f"{node.name}/shape"),
                b.ints([0], f"{node.name}/s0"),
                b.ints([2], f"{node.name}/s1"),
            ],
            f"{node.name}/nc",
        )
        sizes = b.op(
            "Concat",
            [batch_channels, b.ints(size, f"{node.name}/hw")],
            f"{node.name}/sizes",
            axis=0,
        )
        y = b.op("Resize", [xc, "", "", sizes], f"{node.name}/nchw", **attrs)
        return [Value(4, cf=y)]

    return handle


HANDLERS: Mapping[str, Handler] = {
    "Identity": _identity,
    "StopGradient": _identity,
    "Snapshot": _identity,
    "Conv2D": _conv(depthwise=False, fused=False),
    "_FusedConv2D": _conv(depthwise=False, fused=True),
    "DepthwiseConv2dNative": _conv(depthwise=True, fused=False),
    "DepthwiseConv2d": _conv(depthwise=True, fused=False),
    "FusedDepthwiseConv2dNative": _conv(depthwise=True, fused=True),
    "MaxPool": _pool("MaxPool"),
    "AvgPool": _pool("AveragePool"),
    "FusedBatchNorm": _fused_batch_norm,
    "FusedBatchNormV3": _fused_batch_norm,
    "MatMul": _matmul(fused=False),
    "_FusedMatMul": _matmul(fused=True),
    "BiasAdd": elementwise("Add"),
    "Add": elementwise("Add"),
    "AddV2": elementwise("Add"),
    "AddN": elementwise("Sum"),
    "Sub": elementwise("Sub"),
    "Mul": elementwise("Mul"),
    "RealDiv": elementwise("Div"),
    "Div": elementwise("Div"),
    "Maximum": elementwise("Max"),
    "Minimum": elementwise("Min"),
    "Pow": elementwise("Pow"),
    "Prelu": elementwise("PRelu"),
    "Relu": elementwise("Relu"),
    "Elu": elementwise("Elu", alpha=1.0),
    "Selu": elementwise("Selu"),
    "Sigmoid": elementwise("Sigmoid"),
    "Tanh": elementwise("Tanh"),
    "Abs": elementwise("Abs"),
    "Neg": elementwise("Neg"),
    "Exp": elementwise("Exp"),
    "Log": elementwise("Log"),
    "Sqrt": elementwise("Sqrt"),
    "Reciprocal": elementwise("Reciprocal"),
    "Floor": elementwise("Floor"),
    "Ceil": elementwise("Ceil"),
    "Softplus": elementwise("Softplus"),
    "Relu6": _unary_chain(_relu6),
    "Rsqrt": _unary_chain(_rsqrt),
    "Square": _unary_chain(_square),
    "LeakyRelu": _leaky_relu,
    "Softmax": _softmax("Softmax"),
    "LogSoftmax": _softmax("LogSoftmax"),
    "Mean": _reduce("ReduceMean"),
    "Max": _reduce("ReduceMax"),
    "Min": _reduce("ReduceMin"),
    "Prod": _reduce("ReduceProd"),
    "Sum": _reduce("ReduceSum", axes_as_input=True),
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "ExpandDims": _expand_dims,
    "ConcatV2": _concat,
    "Pack": _pack,
    "Pad": _pad,
    "PadV2": _pad,
    "MirrorPad": _pad,
    "Transpose": _transpose,
    "Cast": _cast,
    "StridedSlice": _strided_slice,
    "ResizeBilinear": _resize("linear"),
    "ResizeNearestNeighbor": _resize("nearest"),
}
"""TensorFlow op name -> handler. ``Const`` and ``Placeholder`` are handled by the converter."""


def handler_for(node: TfNode) -> Handler:
    handler = HANDLERS.get(node.op)
    if handler is None:
        raise UnsupportedOpError(
            f"TensorFlow op {node.op} (node {node.name!r}) is not supported by the converter; "
            f"supported ops: {', '.join(sorted(HANDLERS))}."
        )
    return handler
