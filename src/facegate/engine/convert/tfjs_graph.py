"""Reading a TensorFlow.js graph model: ``model.json`` plus its binary weight shards.

Format facts relied on (tfjs sources, github.com/tensorflow/tfjs; ``tfjs-core/src/io/types.ts``,
``io_utils.ts``; ``tfjs-converter/src/executor/graph_model.ts``):

* ``model.json`` has ``format: "graph-model"``, ``modelTopology`` (a TensorFlow ``GraphDef`` as
  protobuf JSON: ``node`` with ``name``, ``op``, ``input``, ``attr``), ``weightsManifest`` (a
  list of groups, each with ``paths``, the shard files relative to ``model.json``, and
  ``weights``), and optionally a ``signature`` (also found under ``userDefinedMetadata``) naming
  the graph's inputs and outputs.
* The weights of all groups are laid out back to back: each group's shards are concatenated in
  ``paths`` order and its weights read from that buffer one after another (``decodeWeights``).
  Every ``Const`` node's value is a weight of the same name.
* A weight has ``name``, ``shape``, ``dtype`` (``float32``, ``int32``, ``bool``...) and
  optionally ``quantization``: ``{dtype: uint8|uint16, scale, min}`` stores ``q`` and means
  ``q * scale + min`` (``Math.round`` of it for int32 weights); ``{dtype: float16}`` stores IEEE
  half floats of float32 weights. Values are little-endian.
* Attribute values are protobuf JSON ``AttrValue``: ``s`` (base64 bytes), ``i`` (a decimal
  string), ``f``, ``b``, ``type`` (``DT_FLOAT``...), ``shape`` (``{dim: [{size}]}``,
  ``unknownRank``) and ``list`` (of any of these).
* A node input is ``name`` (output 0), ``name:k`` (output ``k``) or ``^name`` (a control
  dependency, meaningless for inference and dropped here).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from facegate.errors import EngineUnavailableError

Array = npt.NDArray[Any]

MAX_MODEL_JSON_BYTES = 16 * 1024 * 1024
MAX_WEIGHT_BYTES = 512 * 1024 * 1024

_DTYPES: Mapping[str, npt.DTypeLike] = {
    "float32": "<f4",
    "int32": "<i4",
    "bool": "u1",
}
_QUANT_DTYPES: Mapping[str, npt.DTypeLike] = {"uint8": "u1", "uint16": "<u2", "float16": "<f2"}
TF_DTYPES: Mapping[str, str] = {
    "DT_FLOAT": "float32",
    "DT_INT32": "int32",
    "DT_BOOL": "bool",
    "DT_INT64": "int64",
}


class TfjsFormatError(EngineUnavailableError):
    """A TensorFlow.js model that cannot be read: malformed JSON, missing or short weights."""


@dataclass(frozen=True)
class TfNode:
    """One GraphDef node; attribute values are decoded on access by the typed readers below."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Mapping[str, Any]

    def _attr(self, key: str) -> Mapping[str, Any] | None:
        value = self.attrs.get(key)
        return value if isinstance(value, Mapping) else None

    def has(self, key: str) -> bool:
        return key in self.attrs

    def attr_str(self, key: str, default: str | None = None) -> str:
        attr = self._attr(key)
        if attr is None or "s" not in attr:
            if default is None:
                raise self.error(f"has no string attribute {key!r}")
            return default
        return _b64(attr["s"])

    def attr_int(self, key: str, default: int | None = None) -> int:
        attr = self._attr(key)
        if attr is None or "i" not in attr:
            if default is None:
                raise self.error(f"has no integer attribute {key!r}")
            return default
        return int(attr["i"])

    def attr_float(self, key: str, default: float) -> float:
        attr = self._attr(key)
        if attr is None or "f" not in attr:
            return default
        return float(attr["f"])

    def attr_bool(self, key: str, default: bool = False) -> bool:
        attr = self._attr(key)
        if attr is None or "b" not in attr:
            return default
        return bool(attr["b"])

    def attr_type(self, key: str) -> str | None:
        attr = self._attr(key)
        if attr is None or "type" not in attr:
            return None
        return str(attr["type"])

    def attr_ints(self, key: str) -> tuple[int, ...]:
        attr = self._attr(key)
        if attr is None:
            return ()
        return tuple(int(v) for v in attr.get("list", {}).get("i", ()))

    def attr_strs(self, key: str) -> tuple[str, ...]:
        attr = self._attr(key)
        if attr is None:
            return ()
        return tuple(_b64(v) for v in attr.get("list", {}).get("s", ()))

    def attr_shape(self, key: str) -> tuple[int | None, ...] | None:
        """A ``shape`` attribute: ``None`` for unknown rank, ``None`` dims for unknown sizes."""
        attr = self._attr(key)
        if attr is None or "shape" not in attr:
            return None
        shape = attr["shape"]
        if shape.get("unknownRank"):
            return None
        dims = [int(d.get("size", -1)) for d in shape.get("dim", ())]
        return tuple(None if d < 0 else d for d in dims)

    def error(self, problem: str) -> TfjsFormatError:
        return TfjsFormatError(f"TensorFlow.js node {self.name!r} ({self.op}) {problem}.")


@dataclass(frozen=True)
class TfjsModel:
    """A graph model: its nodes, decoded weights (by name) and declared inputs and outputs."""

    nodes: tuple[TfNode, ...]
    weights: Mapping[str, Array]
    signature_inputs: Mapping[str, str]
    """Signature key -> tensor name (``input_1:0``), in the order the file gives."""
    signature_outputs: Mapping[str, str]
    generated_by: str
    converted_by: str

    def node(self, name: str) -> TfNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise TfjsFormatError(f"TensorFlow.js model has no node named {name!r}.")

    def placeholders(self) -> tuple[TfNode, ...]:
        return tuple(n for n in self.nodes if n.op == "Placeholder")

    def sinks(self) -> tuple[str, ...]:
        """Nodes no other node consumes (the graph's natural outputs), in file order."""
        consumed = {tensor_node(ref) for n in self.nodes for ref in n.inputs}
        return tuple(n.name for n in self.nodes if n.name not in consumed and n.op != "Const")


def _b64(value: object) -> str:
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise TfjsFormatError(f"TensorFlow.js attribute is not base64 text: {value!r}.") from exc


def tensor_node(ref: str) -> str:
    """The node name of a tensor reference (``name``, ``name:1``, ``^name``)."""
    name = ref.lstrip("^")
    head, sep, tail = name.rpartition(":")
    return head if sep and tail.isdigit() else name


def tensor_index(ref: str) -> int:
    """The output index of a tensor reference (0 unless ``name:k``)."""
    _, sep, tail = ref.rpartition(":")
    return int(tail) if sep and tail.isdigit() else 0


def parse_model_json(data: bytes) -> dict[str, Any]:
    """``model.json``'s object, checked to be a graph model."""
    if len(data) > MAX_MODEL_JSON_BYTES:
        raise TfjsFormatError(f"model.json is {len(data)} bytes, over {MAX_MODEL_JSON_BYTES}.")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TfjsFormatError(f"model.json is not JSON: {exc}.") from exc
    if not isinstance(doc, dict):
        raise TfjsFormatError("model.json is not a JSON object.")
    if doc.get("format") != "graph-model":
        raise TfjsFormatError(
            f"model.json has format {doc.get('format')!r}; only TensorFlow.js graph models "
            "('graph-model') can be converted, not layers models."
        )
    topology = doc.get("modelTopology")
    if not isinstance(topology, dict) or not isinstance(topology.get("node"), list):
        raise TfjsFormatError("model.json has no modelTopology.node list.")
    if topology.get("library", {}).get("function"):
        raise TfjsFormatError(
            "model.json uses GraphDef functions (control flow); they are not supported."
        )
    if not isinstance(doc.get("weightsManifest"), list):
        raise TfjsFormatError("model.json has no weightsManifest list.")
    return doc


def shard_paths(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """Every weight file ``model.json`` names, relative to it, in reading order."""
    paths: list[str] = []
    for group in doc["weightsManifest"]:
        for path in group.get("paths", ()):
            text = str(path)
            if text.startswith("/") or ".." in text.split("/") or "\\" in text:
                raise TfjsFormatError(f"weight file path {text!r} leaves the model's folder.")
            paths.append(text)
    return tuple(paths)


def _decode_weight(spec: Mapping[str, Any], buffer: bytes, offset: int) -> tuple[Array, int]:
    name = str(spec.get("name"))
    dtype = str(spec.get("dtype"))
    shape = tuple(int(d) for d in spec.get("shape", ()))
    if any(d < 0 for d in shape):
        raise TfjsFormatError(f"weight {name!r} has a negative dimension: {shape}.")
    count = math.prod(shape)
    quant = spec.get("quantization")
    if dtype not in _DTYPES:
        raise TfjsFormatError(f"weight {name!r} has unsupported dtype {dtype!r}.")
    stored: npt.DTypeLike = _DTYPES[dtype]
    if quant is not None:
        qtype = str(quant.get("dtype"))
        if qtype not in _QUANT_DTYPES:
            raise TfjsFormatError(f"weight {name!r} has unknown quantization {qtype!r}.")
        stored = _QUANT_DTYPES[qtype]
    size = np.dtype(stored).itemsize * count
    if offset + size > len(buffer):
        raise TfjsFormatError(
            f"weights are truncated: {name!r} needs {size} bytes at offset {offset}, "
            f"{len(buffer) - offset} left."
        )
    raw = np.frombuffer(buffer, dtype=stored, count=count, offset=offset)
    values: Array
    if quant is None:
        values = raw.astype(_DTYPES[dtype])
    elif quant["dtype"] == "float16":
        if dtype != "float32":
            raise TfjsFormatError(f"weight {name!r}: float16 quantization of {dtype} weights.")
        values = raw.astype(np.float32)
    else:
        if "scale" not in quant or "min" not in quant:
            raise TfjsFormatError(
                f"weight {name!r}: {quant['dtype']} quantization needs min, scale."
            )
        # tfjs computes q * scale + min in double precision, then stores float32 (or rounds).
        real = raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
        if dtype == "float32":
            values = real.astype(np.float32)
        elif dtype == "int32":
            values = np.floor(real + 0.5).astype(np.int32)  # Math.round: halves go up
        else:
            raise TfjsFormatError(f"weight {name!r}: {quant['dtype']} quantization of {dtype}.")
    return values.astype(values.dtype.newbyteorder("=")).reshape(shape), offset + size


def decode_weights(doc: Mapping[str, Any], read: Callable[[str], bytes]) -> dict[str, Array]:
    """Every weight of ``doc``, reading shards with ``read(relative_path)``."""
    weights: dict[str, Array] = {}
    total = 0
    for group in doc["weightsManifest"]:
        paths = [str(p) for p in group.get("paths", ())]
        chunks = [read(p) for p in paths]
        total += sum(len(c) for c in chunks)
        if total > MAX_WEIGHT_BYTES:
            raise TfjsFormatError(f"weights exceed {MAX_WEIGHT_BYTES} bytes.")
        buffer = b"".join(chunks)
        offset = 0
        for spec in group.get("weights", ()):
            name = str(spec.get("name"))
            if name in weights:
                raise TfjsFormatError(f"weight {name!r} appears twice in the manifest.")
            weights[name], offset = _decode_weight(spec, buffer, offset)
        if offset != len(buffer):
            raise TfjsFormatError(
                f"weight group {paths} has {len(buffer) - offset} bytes beyond its weights."
            )
    return weights


def _signature(doc: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    signature = doc.get("signature") or doc.get("userDefinedMetadata", {}).get("signature") or {}
    inputs = {str(k): str(v.get("name", k)) for k, v in signature.get("inputs", {}).items()}
    outputs = {str(k): str(v.get("name", k)) for k, v in signature.get("outputs", {}).items()}
    return inputs, outputs


def load_tfjs_model(model_json: bytes, read: Callable[[str], bytes]) -> TfjsModel:
    """Parse ``model_json`` and decode its weights, reading shards with ``read(path)``.

    Raises TfjsFormatError for anything that is not a readable graph model.
    """
    doc = parse_model_json(model_json)
    shard_paths(doc)  # refuses paths outside the model's folder before reading any
    weights = decode_weights(doc, read)
    nodes: list[TfNode] = []
    names: set[str] = set()
    for raw in doc["modelTopology"]["node"]:
        if not isinstance(raw, dict) or "name" not in raw or "op" not in raw:
            raise TfjsFormatError(f"modelTopology has a node without name or op: {raw!r:.200}.")
        node = TfNode(
            name=str(raw["name"]),
            op=str(raw["op"]),
            inputs=tuple(str(i) for i in raw.get("input", ()) if not str(i).startswith("^")),
            attrs=raw.get("attr", {}),
        )
        if node.name in names:
            raise TfjsFormatError(f"modelTopology has two nodes named {node.name!r}.")
        names.add(node.name)
        nodes.append(node)
    for node in nodes:
        if node.op == "Const" and node.name not in weights:
            raise node.error("has no value in the weights manifest")
        for ref in node.inputs:
            if tensor_node(ref) not in names:
                raise node.error(f"reads {ref!r}, which no node produces")
    inputs, outputs = _signature(doc)
    return TfjsModel(
        nodes=tuple(nodes),
        weights=weights,
        signature_inputs=inputs,
        signature_outputs=outputs,
        generated_by=str(doc.get("generatedBy", "")),
        converted_by=str(doc.get("convertedBy", "")),
    )
