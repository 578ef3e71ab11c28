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

from collections.abc import Mapping

from facegate.engine.convert.ops_base import Handler, UnsupportedOpError
from facegate.engine.convert.ops_nn import (
    conv,
    elementwise,
    fused_batch_norm,
    identity,
    leaky_relu,
    matmul,
    pool,
    reduce,
    relu6,
    rsqrt,
    softmax,
    square,
    unary_chain,
)
from facegate.engine.convert.ops_shape import (
    cast,
    concat,
    expand_dims,
    pack,
    pad,
    reshape,
    resize,
    squeeze,
    strided_slice,
    transpose,
)
from facegate.engine.convert.tfjs_graph import TfNode

__all__ = ["HANDLERS", "Handler", "UnsupportedOpError", "handler_for"]


HANDLERS: Mapping[str, Handler] = {
    "Identity": identity,
    "StopGradient": identity,
    "Snapshot": identity,
    "Conv2D": conv(depthwise=False, fused=False),
    "_FusedConv2D": conv(depthwise=False, fused=True),
    "DepthwiseConv2dNative": conv(depthwise=True, fused=False),
    "DepthwiseConv2d": conv(depthwise=True, fused=False),
    "FusedDepthwiseConv2dNative": conv(depthwise=True, fused=True),
    "MaxPool": pool("MaxPool"),
    "AvgPool": pool("AveragePool"),
    "FusedBatchNorm": fused_batch_norm,
    "FusedBatchNormV3": fused_batch_norm,
    "MatMul": matmul(fused=False),
    "_FusedMatMul": matmul(fused=True),
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
    "Relu6": unary_chain(relu6),
    "Rsqrt": unary_chain(rsqrt),
    "Square": unary_chain(square),
    "LeakyRelu": leaky_relu,
    "Softmax": softmax("Softmax"),
    "LogSoftmax": softmax("LogSoftmax"),
    "Mean": reduce("ReduceMean"),
    "Max": reduce("ReduceMax"),
    "Min": reduce("ReduceMin"),
    "Prod": reduce("ReduceProd"),
    "Sum": reduce("ReduceSum", axes_as_input=True),
    "Reshape": reshape,
    "Squeeze": squeeze,
    "ExpandDims": expand_dims,
    "ConcatV2": concat,
    "Pack": pack,
    "Pad": pad,
    "PadV2": pad,
    "MirrorPad": pad,
    "Transpose": transpose,
    "Cast": cast,
    "StridedSlice": strided_slice,
    "ResizeBilinear": resize("linear"),
    "ResizeNearestNeighbor": resize("nearest"),
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
