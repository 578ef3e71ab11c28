"""What the op handlers share: their type, the refusal error, reading constant inputs.

See :mod:`.tfjs_ops` for the handlers' contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.engine.convert.onnx_values import GraphBuilder, Value
from facegate.engine.convert.tfjs_graph import TfjsFormatError, TfNode

Array = npt.NDArray[Any]
Handler = Callable[[GraphBuilder, TfNode, list[Value]], list[Value]]
"""(builder, node, input values) -> output values."""

INT64_MAX = int(np.iinfo(np.int64).max)
INT64_MIN = int(np.iinfo(np.int64).min)
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}
"""A TF (NHWC) axis of a rank-4 tensor -> the same axis in NCHW."""


class UnsupportedOpError(TfjsFormatError):
    """The graph uses an op (or an op's variant) the converter does not translate."""


def unsupported(node: TfNode, what: str) -> UnsupportedOpError:
    return UnsupportedOpError(
        f"TensorFlow op {node.op} (node {node.name!r}) is not supported by the converter: {what}."
    )


def static(node: TfNode, value: Value, what: str) -> Array:
    """The constant value of an input that must be known when converting."""
    if value.const is None:
        raise unsupported(node, f"its {what} must be a constant")
    return value.const


def static_ints(node: TfNode, value: Value, what: str) -> list[int]:
    return [int(v) for v in static(node, value, what).reshape(-1)]


def require_args(node: TfNode, args: list[Value], count: int) -> None:
    if len(args) < count:
        raise node.error(f"has {len(args)} inputs, needs {count}")


def axes_of(node: TfNode, value: Value, rank: int | None, what: str = "axes") -> list[int]:
    axes = static_ints(node, value, what)
    if rank is None:
        if any(a < 0 for a in axes):
            raise unsupported(node, "negative axes on a tensor of unknown rank")
        return axes
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise node.error(f"has axis {a} for a rank-{rank} tensor")
        out.append(a % rank)
    return out
