"""An exact rewrite of a verified ONNX graph before onnxruntime loads it: ReLU6 as one ``Clip``.

TensorFlow's ``clip_by_value(relu(x), 0, 6)`` converts op by op (:mod:`facegate.engine.convert`)
to ``Relu -> Min(6) -> Max(0)``. onnxruntime fuses a ``Conv`` with a following ``Clip`` but not
with ``Min``/``Max``, so in the converted ``faceres`` graph (27 such chains) every convolution's
output leaves onnxruntime's blocked NCHWc layout, is clamped by two element-wise passes and is
reordered back: about 20% of its run time on one thread (bench/fusion_targets.py --cost-only,
docs/benchmarks.md). :func:`fuse_relu6` replaces each chain whose two bounds are scalar
constants ``hi >= lo = 0`` (and whose intermediate values nothing else reads) with
``Clip(x, lo, hi)``: ``max(min(relu(x), hi), lo)`` and ``clip(x, lo, hi)`` are the same value
for every float (``NaN`` aside), so the model computes what it computed before.

The rewrite runs on the bytes whose SHA-256 was checked (the file on disk, its manifest and
facegate's pin are unchanged): the bytes hashed are still the bytes loaded, then rewritten in
memory.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _scalar(initialisers: dict[str, onnx.TensorProto], name: str) -> float | None:
    """The value of a one-element float32 constant ``name``, or None."""
    tensor = initialisers.get(name)
    if tensor is None or tensor.data_type != onnx.TensorProto.FLOAT:
        return None
    value = numpy_helper.to_array(tensor)
    return float(value.reshape(-1)[0]) if value.size == 1 else None


def fuse_relu6(model: onnx.ModelProto) -> int:
    """Replace every ``Relu -> Min(hi) -> Max(lo)`` chain of ``model`` (in place) by
    ``Clip(x, lo, hi)`` where ``lo == 0 <= hi``, both one-element float32 initialisers, and
    neither the ``Relu``'s nor the ``Min``'s output is read by anything else or is a graph
    output. Returns how many chains were replaced (0: the model is unchanged)."""
    graph = model.graph
    initialisers = {t.name: t for t in graph.initializer}
    readers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            readers[name].append(node)
    outputs = {o.name for o in graph.output}

    def only_reader(name: str, op_type: str) -> onnx.NodeProto | None:
        found = readers.get(name, [])
        if name in outputs or len(found) != 1 or found[0].op_type != op_type:
            return None
        return found[0]

    replaced: dict[int, onnx.NodeProto] = {}  # id of the Relu -> its Clip
    dropped: set[int] = set()  # ids of the Min and Max folded into a Clip
    bounds: dict[tuple[float, float], tuple[str, str]] = {}
    for node in graph.node:
        if node.op_type != "Relu" or len(node.input) != 1:
            continue
        low = only_reader(node.output[0], "Min")
        high = None if low is None else only_reader(low.output[0], "Max")
        if low is None or high is None or len(low.input) != 2 or len(high.input) != 2:
            continue
        hi = _scalar(initialisers, next(i for i in low.input if i != node.output[0]))
        lo = _scalar(initialisers, next(i for i in high.input if i != low.output[0]))
        if hi is None or lo is None or lo != 0.0 or hi < lo:
            continue
        if (lo, hi) not in bounds:
            names = (f"fuse_relu6/lo_{len(bounds)}", f"fuse_relu6/hi_{len(bounds)}")
            for name, value in zip(names, (lo, hi), strict=True):
                graph.initializer.append(
                    numpy_helper.from_array(np.array(value, dtype=np.float32), name)
                )
            bounds[(lo, hi)] = names
        lo_name, hi_name = bounds[(lo, hi)]
        replaced[id(node)] = helper.make_node(
            "Clip",
            [node.input[0], lo_name, hi_name],
            [high.output[0]],
            name=f"{node.name or node.output[0]}/relu6",
        )
        dropped.update((id(low), id(high)))
    if not replaced:
        return 0
    nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    # the Min's and Max's bounds nothing reads any more (onnxruntime would warn of each)
    read = {name for n in graph.node for name in n.input} | outputs
    kept = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return len(replaced)


def fused_bytes(data: bytes) -> bytes:
    """``data`` (a serialised ONNX model) with :func:`fuse_relu6` applied; ``data`` itself
    when there is nothing to fuse."""
    model = onnx.load_from_string(data)
    if fuse_relu6(model) == 0:
        return data
    out: bytes = model.SerializeToString()
    return out
