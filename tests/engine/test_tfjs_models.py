"""Every catalogue model, converted here, against TensorFlow.js on four sample face crops.

``data/tfjs_model_reference.json`` (``python bench/tfjs_equivalence.py --write-references``)
holds, for four PNG samples (exact decoding), the face and eye squares the engine found, and per
model the SHA-256 of the prepared input batch and TensorFlow.js 4.22.0's outputs for it. The
converter runs on the package source that ``tools/dev.py`` keeps in the models folder
(``.venv/share/facegate/models/source``, or ``$FACEGATE_MODELS_DIR/source``): the test fails,
never skips, without it. ``bench/tfjs_equivalence.py`` makes the same comparison on 50 crops.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
import pytest

from facegate.engine.blazeface import MODEL_NAME as BLAZEFACE_MODEL
from facegate.engine.blazeface import letterbox
from facegate.engine.convert.package import check_pins, convert_model, read_package
from facegate.engine.human_catalogue import CATALOGUE, MODEL_NAMES, ModelSpec
from facegate.engine.human_models import (
    Square,
    default_models_dir,
    fraction_crop,
    prepare_batch,
)
from facegate.engine.image import ImageLimits, decode_image

REFERENCE = json.loads((Path(__file__).parent / "data" / "tfjs_model_reference.json").read_text())
RTOL = 1e-4
"""Of each output's largest magnitude: measured errors are below 1e-6 of it (float32 rounding,
differing summation orders); a layout or semantics mistake is of the order of the values."""

Pixels = npt.NDArray[np.uint8]


def package_source() -> Path:
    env = os.environ.get("FACEGATE_MODELS_DIR")
    source = (Path(env) if env else default_models_dir()) / "source"
    if not (source / "package.json").is_file():
        pytest.fail(
            f"the human-models package source is not at {source}: run python3 tools/dev.py test "
            "(it sets up the models), or facegate models convert --from <the npm .tgz>"
        )
    return source


@pytest.fixture(scope="module")
def package_files() -> dict[str, bytes]:
    files, _ = read_package(package_source())
    assert check_pins(files, None, CATALOGUE) == []
    return files


@pytest.fixture(scope="module")
def crops(samples: Path) -> list[tuple[Pixels, dict[str, Any]]]:
    out = []
    for crop in REFERENCE["crops"]:
        path = samples / crop["source"].removeprefix("samples/")
        image = decode_image(path.read_bytes(), ImageLimits())
        out.append((image.pixels, crop))
    return out


def square(values: list[float]) -> Square:
    return Square(values[0], values[1], values[2])


def model_input(spec: ModelSpec, crops: list[tuple[Pixels, dict[str, Any]]]) -> Any:
    """The bench's inputs, rebuilt from the stored squares (bench/tfjs_equivalence.py); the
    face detector's are the whole images, letterboxed."""
    if spec.name == BLAZEFACE_MODEL:
        return np.concatenate([letterbox(pixels)[0] for pixels, _ in crops])
    if spec.name == "iris":
        eyes: list[Pixels] = []
        for pixels, crop in crops:
            eyes.append(square(crop["eye_left"]).crop(pixels))
            eyes.append(square(crop["eye_right"]).crop(pixels, mirror=True))
        return prepare_batch(spec.input, eyes)
    faces = [square(crop["face"]).crop(pixels) for pixels, crop in crops]
    if spec.name == "gear":
        faces = [fraction_crop(f, 0.0, 0.1, 0.9, 0.9) for f in faces]
    return prepare_batch(spec.input, faces)


def expected(doc: dict[str, Any]) -> npt.NDArray[np.float32]:
    data = np.frombuffer(base64.b64decode(doc["f32"]), dtype="<f4")
    return data.reshape(doc["shape"]).astype(np.float32)


def test_reference_covers_the_catalogue() -> None:
    assert sorted(REFERENCE["models"]) == sorted(MODEL_NAMES)
    assert REFERENCE["tfjs_version"] == "4.22.0"


@pytest.mark.slow
@pytest.mark.parametrize("spec", CATALOGUE, ids=MODEL_NAMES)
def test_converted_model_matches_tfjs(
    spec: ModelSpec,
    package_files: dict[str, bytes],
    crops: list[tuple[Pixels, dict[str, Any]]],
) -> None:
    data, _ = convert_model(spec, lambda rel: package_files[f"models/{rel}"])
    assert hashlib.sha256(data).hexdigest() == spec.onnx_sha256, "conversion differs from pin"
    reference = REFERENCE["models"][spec.name]
    batch = model_input(spec, crops)
    digest = hashlib.sha256(np.ascontiguousarray(batch, "<f4").tobytes()).hexdigest()
    assert digest == reference["input_sha256"], (
        "the prepared inputs differ from the ones tfjs saw (decoding or resizing changed): "
        "regenerate with bench/tfjs_equivalence.py --write-references"
    )
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in spec.outputs]
    if spec.batch_size is None:
        got = dict(zip(names, session.run(names, {spec.input.name: batch}), strict=True))
    else:  # a graph of a fixed batch size (1): one item at a time
        runs = [session.run(names, {spec.input.name: batch[i : i + 1]}) for i in range(len(batch))]
        got = {n: np.concatenate([r[k] for r in runs]) for k, n in enumerate(names)}
    for out in spec.outputs:
        want = expected(reference["expected"][out.name])
        assert got[out.name].shape == want.shape == (len(batch), *out.shape)
        scale = float(np.abs(want).max())
        error = float(np.abs(got[out.name] - want).max())
        assert error <= RTOL * max(scale, 1e-6), f"{out.name}: {error:.3g} (scale {scale:.3g})"


def test_gear_has_no_race_head(package_files: dict[str, bytes]) -> None:
    """gear's graph also classifies race; facegate converts it without that head."""
    import onnx

    from facegate.engine.human_catalogue import model_spec

    data, ops = convert_model(model_spec("gear"), lambda rel: package_files[f"models/{rel}"])
    model = onnx.load_from_string(data)
    assert [o.name for o in model.graph.output] == ["age_bins", "gender"]
    names = [n.name for n in model.graph.node] + [i.name for i in model.graph.initializer]
    assert not [n for n in names if "race" in n]
    assert ops["Softmax"] == 2  # age and gender; the original has three
