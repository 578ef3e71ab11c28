"""A TensorFlow.js graph model as an ONNX model computing the same function.

:func:`convert_tfjs` walks the graph from the requested outputs back to the placeholders (nodes
nothing asks for are left out), translates each node with :mod:`.tfjs_ops`, and checks the result
with ONNX's checker and strict shape inference. The ONNX model's inputs and outputs keep
TensorFlow's layout and shapes (NHWC images, a dynamic batch dimension where the placeholder has
one), so a caller feeds it exactly what it would feed the TensorFlow.js model.

The bytes are deterministic: the same model and converter version give the same file (no time
stamps, ``SerializeToString(deterministic=True)``), so a converted file can be pinned by its
SHA-256.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import onnx
from onnx import TensorProto, helper

from facegate.engine.convert.onnx_values import GraphBuilder, Value
from facegate.engine.convert.tfjs_graph import (
    TF_DTYPES,
    TfjsFormatError,
    TfjsModel,
    TfNode,
    tensor_index,
    tensor_node,
)
from facegate.engine.convert.tfjs_ops import handler_for

CONVERTER_VERSION = "1"
"""Bumped whenever the graphs :func:`convert_tfjs` writes change (part of pinned hashes)."""
ONNX_OPSET = 17
ONNX_IR_VERSION = 8  # the IR version that goes with opset 17 (onnx/helper.py VERSION_TABLE)

_ONNX_TYPES = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32, "bool": TensorProto.BOOL}


@dataclass(frozen=True)
class Conversion:
    """A converted model and what went into it."""

    model: onnx.ModelProto
    inputs: Mapping[str, str]
    """ONNX input name -> the TensorFlow placeholder it stands for."""
    outputs: Mapping[str, str]
    """ONNX output name -> the TensorFlow tensor it carries."""
    op_counts: Mapping[str, int]
    """TensorFlow op -> how many nodes of it were converted (``Const`` included)."""

    def serialize(self) -> bytes:
        data: bytes = self.model.SerializeToString(deterministic=True)
        return data


def onnx_name(text: str) -> str:
    """A readable ONNX input/output name from a signature key or tensor name."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text.removesuffix(":0")).strip("_")
    return name or "output"


def default_outputs(model: TfjsModel) -> dict[str, str]:
    """The signature's outputs (named by key), else every sink node."""
    if model.signature_outputs:
        return {onnx_name(k): v for k, v in model.signature_outputs.items()}
    return {onnx_name(s): s for s in model.sinks()}


def _order(model: TfjsModel, targets: list[str]) -> list[TfNode]:
    """The nodes ``targets`` depend on, each after its inputs (iterative depth-first search)."""
    by_name = {n.name: n for n in model.nodes}
    order: list[TfNode] = []
    state: dict[str, int] = {}  # 1: in progress, 2: done
    for target in targets:
        if target not in by_name:
            raise TfjsFormatError(f"TensorFlow.js model has no node {target!r} to output.")
        stack: list[tuple[str, bool]] = [(target, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                state[name] = 2
                order.append(by_name[name])
                continue
            if state.get(name) == 2:
                continue
            if state.get(name) == 1:
                raise TfjsFormatError(f"TensorFlow.js graph has a cycle through {name!r}.")
            state[name] = 1
            stack.append((name, True))
            for ref in reversed(by_name[name].inputs):
                dep = tensor_node(ref)
                if state.get(dep) != 2:
                    if state.get(dep) == 1:
                        raise TfjsFormatError(f"TensorFlow.js graph has a cycle through {dep!r}.")
                    stack.append((dep, False))
    return order


def convert_tfjs(
    model: TfjsModel,
    *,
    outputs: Mapping[str, str] | None = None,
    input_name: str | None = None,
    graph_name: str = "tfjs",
    doc_string: str = "",
    metadata: Mapping[str, str] | None = None,
) -> Conversion:
    """Convert ``model``; ``outputs`` maps ONNX output names to float32 TensorFlow tensors
    (default: :func:`default_outputs`). Placeholders become inputs named after their signature
    key (or node name), or ``input_name`` if given and the graph has one placeholder, with
    their declared dtype and shape (unknown dimensions dynamic).

    Raises UnsupportedOpError naming the first op it cannot translate, TfjsFormatError for a
    malformed graph.
    """
    wanted = dict(outputs) if outputs is not None else default_outputs(model)
    if not wanted:
        raise TfjsFormatError("TensorFlow.js model has no outputs to convert.")
    order = _order(model, [tensor_node(ref) for ref in wanted.values()])
    b = GraphBuilder()
    for out_name in wanted:
        b.reserve(out_name)  # before any node can take the name
    input_keys = {tensor_node(v): k for k, v in model.signature_inputs.items()}
    placeholders = [n for n in order if n.op == "Placeholder"]
    if input_name is not None:
        if len(placeholders) != 1:
            raise TfjsFormatError(
                f"cannot name the input {input_name!r}: the graph has {len(placeholders)} inputs."
            )
        input_keys = {placeholders[0].name: input_name}
    values: dict[tuple[str, int], Value] = {}
    graph_inputs: list[onnx.ValueInfoProto] = []
    input_map: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for node in order:
        counts[node.op] += 1
        if node.op == "Const":
            values[(node.name, 0)] = Value(
                model.weights[node.name].ndim, const=model.weights[node.name]
            )
            continue
        if node.op == "Placeholder":
            name = onnx_name(input_keys.get(node.name, node.name))
            b.reserve(name)
            dtype = TF_DTYPES.get(node.attr_type("dtype") or "DT_FLOAT", "")
            if dtype not in _ONNX_TYPES:
                raise TfjsFormatError(f"placeholder {node.name!r} has unsupported dtype {dtype!r}.")
            shape = node.attr_shape("shape")
            dims = (
                None
                if shape is None
                else [("N" if i == 0 else None) if d is None else d for i, d in enumerate(shape)]
            )
            graph_inputs.append(helper.make_tensor_value_info(name, _ONNX_TYPES[dtype], dims))
            values[(node.name, 0)] = Value(None if shape is None else len(shape), tf=name)
            input_map[name] = node.name
            continue
        args = []
        for ref in node.inputs:
            key = (tensor_node(ref), tensor_index(ref))
            if key not in values:
                raise node.error(f"reads output {key[1]} of {key[0]!r}, which has none")
            args.append(values[key])
        for i, value in enumerate(handler_for(node)(b, node, args)):
            values[(node.name, i)] = value
    graph_outputs: list[onnx.ValueInfoProto] = []
    for out_name, ref in wanted.items():
        key = (tensor_node(ref), tensor_index(ref))
        if key not in values:
            raise TfjsFormatError(f"TensorFlow.js model has no tensor {ref!r} to output.")
        source = b.tf(values[key], f"{out_name}/value")
        b.nodes.append(helper.make_node("Identity", [source], [out_name], name=out_name))
        graph_outputs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None))
    graph = helper.make_graph(
        b.nodes, graph_name, graph_inputs, graph_outputs, b.initializers, doc_string=doc_string
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        ir_version=ONNX_IR_VERSION,
        producer_name="facegate.engine.convert",
        producer_version=CONVERTER_VERSION,
    )
    helper.set_model_props(onnx_model, dict(metadata or {}))
    _set_output_shapes(onnx_model)
    try:
        onnx.checker.check_model(onnx_model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise TfjsFormatError(f"the converted graph is not valid ONNX: {exc}") from exc
    return Conversion(
        model=onnx_model,
        inputs=input_map,
        outputs=dict(wanted),
        op_counts=dict(sorted(counts.items())),
    )


def _set_output_shapes(model: onnx.ModelProto) -> None:
    """Declare each output's shape as strict shape inference finds it (and fail if it can't)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except onnx.shape_inference.InferenceError as exc:
        raise TfjsFormatError(f"the converted graph fails ONNX shape inference: {exc}") from exc
    shapes = {o.name: o for o in inferred.graph.output}
    for output in model.graph.output:
        found = shapes.get(output.name)
        if found is not None and found.type.tensor_type.HasField("shape"):
            output.type.tensor_type.shape.CopyFrom(found.type.tensor_type.shape)
