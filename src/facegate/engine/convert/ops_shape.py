"""Handlers of the ops that move data without computing on it: reshapes, slices, padding,
concatenation, transposes, casts and resizing (see :mod:`.tfjs_ops`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from facegate.engine.convert.onnx_values import TO_NCHW, GraphBuilder, Value
from facegate.engine.convert.ops_base import (
    INT64_MAX,
    INT64_MIN,
    NHWC_TO_NCHW_AXIS,
    Handler,
    axes_of,
    require_args,
    static,
    static_ints,
    unsupported,
)
from facegate.engine.convert.tfjs_graph import TF_DTYPES, TfNode


def reshape(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    require_args(node, args, 2)
    shape = static_ints(node, args[1], "shape")
    if 0 in shape:
        raise unsupported(node, f"shape {shape} with a zero dimension")
    if shape.count(-1) > 1:
        raise node.error(f"has shape {shape} with more than one -1")
    x = b.tf(args[0], node.name)
    return [
        Value(len(shape), tf=b.op("Reshape", [x, b.ints(shape, f"{node.name}/shape")], node.name))
    ]


def squeeze(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    require_args(node, args, 1)
    x = args[0]
    dims = list(node.attr_ints("squeeze_dims")) or list(node.attr_ints("axis"))
    if not dims:
        raise unsupported(node, "Squeeze without squeeze_dims (needs static shapes)")
    if x.rank is None:
        raise unsupported(node, "Squeeze of a tensor of unknown rank")
    axes = sorted({d % x.rank for d in dims})
    y = b.op("Squeeze", [b.tf(x, node.name), b.ints(axes, f"{node.name}/axes")], node.name)
    return [Value(x.rank - len(axes), tf=y)]


def expand_dims(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    require_args(node, args, 2)
    x = args[0]
    dims = static_ints(node, args[1], "dim")
    if len(dims) != 1 or x.rank is None:
        raise unsupported(node, f"dim {dims} on rank {x.rank}")
    axis = dims[0] % (x.rank + 1)  # TF: -1 appends, as ONNX's -1 of the output rank
    y = b.op("Unsqueeze", [b.tf(x, node.name), b.ints([axis], f"{node.name}/axes")], node.name)
    return [Value(x.rank + 1, tf=y)]


def concat(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    require_args(node, args, 2)
    *parts, axis_value = args
    rank = parts[0].rank
    if any(p.rank != rank for p in parts):
        raise node.error("concatenates tensors of different ranks")
    (axis,) = axes_of(node, axis_value, rank, "axis")
    if rank == 4 and any(p.has_cf for p in parts):
        names = [b.cf(p, f"{node.name}/arg{i}") for i, p in enumerate(parts)]
        y = b.op("Concat", names, f"{node.name}/nchw", axis=NHWC_TO_NCHW_AXIS[axis])
        return [Value(4, cf=y)]
    names = [b.tf(p, f"{node.name}/arg{i}") for i, p in enumerate(parts)]
    return [Value(rank, tf=b.op("Concat", names, node.name, axis=axis))]


def pack(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    require_args(node, args, 1)
    rank = args[0].rank
    if rank is None or any(a.rank != rank for a in args):
        raise unsupported(node, "Pack of tensors of unknown or different ranks")
    axis = node.attr_int("axis", 0) % (rank + 1)
    axes = b.ints([axis], f"{node.name}/axes")
    parts = [
        b.op("Unsqueeze", [b.tf(a, f"{node.name}/arg{i}"), axes], f"{node.name}/arg{i}/expanded")
        for i, a in enumerate(args)
    ]
    return [Value(rank + 1, tf=b.op("Concat", parts, node.name, axis=axis))]


def pad(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    require_args(node, args, 2)
    x = args[0]
    paddings = static(node, args[1], "paddings").astype(np.int64)
    if x.rank is None or paddings.shape != (x.rank, 2):
        raise node.error(f"has paddings of shape {paddings.shape} for rank {x.rank}")
    attrs: dict[str, Any] = {"mode": "constant"}
    inputs_extra: list[str] = []
    if node.op == "MirrorPad":
        mode = node.attr_str("mode")
        if mode != "REFLECT":
            raise unsupported(node, f"mode {mode} (only REFLECT)")
        attrs["mode"] = "reflect"
    elif node.op == "PadV2":
        require_args(node, args, 3)
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


def transpose(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    require_args(node, args, 2)
    perm = static_ints(node, args[1], "perm")
    y = b.op("Transpose", [b.tf(args[0], node.name)], node.name, perm=perm)
    return [Value(len(perm), tf=y)]


def cast(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    require_args(node, args, 1)
    target = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32, "bool": TensorProto.BOOL}
    dst = TF_DTYPES.get(node.attr_type("DstT") or "", "")
    if dst not in target:
        raise unsupported(node, f"cast to {node.attr_type('DstT')}")
    return [
        Value(args[0].rank, tf=b.op("Cast", [b.tf(args[0], node.name)], node.name, to=target[dst]))
    ]


def strided_slice(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
    """TF's StridedSlice as ONNX Slice, then Squeeze (shrink axes), then Unsqueeze (new axes)."""
    require_args(node, args, 4)
    x = args[0]
    if x.rank is None:
        raise unsupported(node, "StridedSlice of a tensor of unknown rank")
    begin = static_ints(node, args[1], "begin")
    end = static_ints(node, args[2], "end")
    strides = static_ints(node, args[3], "strides")
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


def resize(mode: str) -> Handler:
    def handle(b: GraphBuilder, node: TfNode, args: list[Value]) -> list[Value]:
        require_args(node, args, 2)
        x = args[0]
        if x.rank != 4:
            raise node.error(f"resizes a rank-{x.rank} input")
        size = static_ints(node, args[1], "size")
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
                raise unsupported(node, "nearest-neighbour resize with align_corners")
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
