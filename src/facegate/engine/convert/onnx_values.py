"""The ONNX graph under construction, with each TensorFlow tensor in one or both layouts.

TensorFlow (and so TensorFlow.js) image tensors are NHWC; ONNX's ``Conv``, pooling and ``Resize``
over spatial axes work on NCHW. The converted graph keeps TensorFlow's semantics everywhere a
layout is visible (its inputs and outputs, ``Reshape``, axes of reductions and concatenations,
slices), and runs layout-sensitive ops in NCHW between ``Transpose`` nodes.

A :class:`Value` is one TensorFlow tensor. It may exist as an ONNX tensor in TensorFlow's layout
(``tf``), in NCHW (``cf``, rank 4 only), or both; the other form is made by a ``Transpose`` the
first time something asks for it, and never otherwise. So a chain of convolutions and
element-wise ops stays in NCHW with no transposes in between, and only what reads the tensor in
TensorFlow's layout pays for one. Constants are kept as numpy arrays and become initializers in
whichever layout their consumer asks for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

Array = npt.NDArray[Any]

TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)


class Value:
    """One TensorFlow tensor in the graph being built (see the module docstring)."""

    __slots__ = ("_cf", "_tf", "const", "rank")

    def __init__(
        self,
        rank: int | None,
        *,
        tf: str | None = None,
        cf: str | None = None,
        const: Array | None = None,
    ) -> None:
        if tf is None and cf is None and const is None:
            raise ValueError("a Value needs an ONNX tensor or a constant")
        if cf is not None and rank != 4:
            raise ValueError("only rank-4 values have an NCHW form")
        self.rank = rank
        self._tf = tf
        self._cf = cf
        self.const = const

    @property
    def has_cf(self) -> bool:
        """True if the NCHW form exists already (using it costs no transpose)."""
        return self._cf is not None


class GraphBuilder:
    """Collects ONNX nodes and initializers; hands out unique tensor names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()

    def fresh(self, hint: str) -> str:
        """A tensor name not used yet, ``hint`` itself if possible."""
        name = hint
        n = 1
        while name in self._names:
            n += 1
            name = f"{hint}_{n}"
        self._names.add(name)
        return name

    def reserve(self, name: str) -> None:
        if name in self._names:
            raise ValueError(f"ONNX tensor name {name!r} is taken")
        self._names.add(name)

    def initializer(self, value: Array, hint: str) -> str:
        name = self.fresh(hint)
        array = np.ascontiguousarray(value)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def ints(self, values: tuple[int, ...] | list[int], hint: str) -> str:
        """An int64 1-D initializer (shapes, axes, pads, slice bounds)."""
        return self.initializer(np.asarray(values, dtype=np.int64).reshape(-1), hint)

    def scalar(self, value: float, hint: str) -> str:
        return self.initializer(np.asarray(value, dtype=np.float32), hint)

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        """Add a node with one output; returns the output's name."""
        out = self.fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    # -- layouts ------------------------------------------------------------------------------

    def tf(self, value: Value, hint: str) -> str:
        """The ONNX tensor of ``value`` in TensorFlow's layout (made on first request)."""
        if value._tf is None:
            if value.const is not None:
                value._tf = self.initializer(value.const, hint)
            else:
                assert value._cf is not None
                value._tf = self.op("Transpose", [value._cf], f"{hint}/nhwc", perm=TO_NHWC)
        return value._tf

    def cf(self, value: Value, hint: str) -> str:
        """The ONNX tensor of a rank-4 ``value`` in NCHW (made on first request)."""
        if value.rank != 4:
            raise ValueError(f"{hint}: only rank-4 tensors have an NCHW form (rank {value.rank})")
        if value._cf is None:
            if value.const is not None:
                value._cf = self.initializer(value.const.transpose(TO_NCHW), f"{hint}/nchw")
            else:
                value._cf = self.op(
                    "Transpose", [self.tf(value, hint)], f"{hint}/nchw", perm=TO_NCHW
                )
        return value._cf
