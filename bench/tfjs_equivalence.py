"""The converted ONNX models against the original TensorFlow.js models, on real face crops.

    PYTHONPATH=src python bench/tfjs_equivalence.py [--crops 50] [--models age,emotion] [--out NAME]
    PYTHONPATH=src python bench/tfjs_equivalence.py --write-references

For each model of the catalogue (``engine/human_catalogue.py``), converts it from the package
source (default: the ``source/`` copy in the models folder that ``tools/dev.py`` set up; or
``--source`` a ``.tgz`` or folder), runs it with onnxruntime and the original with TensorFlow.js
(``@tensorflow/tfjs-core``, ``-converter`` and ``-backend-cpu`` 4.22.0, pure JavaScript, the
CPU backend) in node on the same input tensors, and compares every output. The inputs are face
crops of faces the engine detects in ../shared/data (samples, LFW, FairFace), made the way
``engine.human_models`` documents (``face_square`` 1.4x, ``prepare_batch``; ``iris``: both eyes,
one mirrored; ``gear``: human's sub-crop).

Reported per model and output: max absolute error, max relative error (against
``max(|tfjs|, 1e-3 * max|tfjs|)`` so values near 0 do not dominate), agreement of the argmax
for class outputs, the smallest cosine similarity for the descriptor, and the median time per
crop of each runtime. Prints a table and writes ``bench/results/tfjs_equivalence.json``.

``--write-references`` instead writes the unit tests' data (``tests/engine/data``): tfjs's
outputs for the synthetic graphs of ``bench/tfjs_cases.py`` and for four sample crops (PNG, so
decoding is exact) per model. Run it whenever the pins, the cases or tfjs's version change.

Needs node and npm: the pinned packages of ``bench/tfjs/package-lock.json`` are installed with
``npm ci`` into ``bench/results/cache/tfjs-node`` on first use.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]

from benchlib import RESULTS, ROOT, SAMPLES, machine_info, machine_line, write_results
from facegate.engine.blazeface import MODEL_NAME as BLAZEFACE_MODEL
from facegate.engine.blazeface import letterbox
from facegate.engine.convert.package import convert_model, read_package
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.human_catalogue import CATALOGUE, ModelSpec, model_spec
from facegate.engine.human_models import (
    Square,
    default_models_dir,
    eye_square,
    face_square,
    fraction_crop,
    prepare_batch,
)
from facegate.engine.types import DetectedFace
from facegate.errors import FacegateError
from tfjs_cases import case_documents

Floats = npt.NDArray[np.float32]
TFJS_DIR = ROOT / "bench" / "tfjs"
TFJS_CACHE = RESULTS / "cache" / "tfjs-node"
DATA = ROOT.parent / "shared" / "data"
TEST_DATA = ROOT / "tests" / "engine" / "data"
REFERENCE_IMAGES = ("astronaut.png", "bbt/amy1.png", "bbt/leonard1.png", "bbt/penny1.png")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


# -- TensorFlow.js in node ------------------------------------------------------------------------


def ensure_tfjs() -> Path:
    """The node runner, next to the pinned tfjs packages (``npm ci`` when the lock changed)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed to run TensorFlow.js (Debian: apt-get install nodejs npm)")
    lock = (TFJS_DIR / "package-lock.json").read_bytes()
    stamp = TFJS_CACHE / ".lock-sha256"
    wanted = hashlib.sha256(lock).hexdigest()
    TFJS_CACHE.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json", "reference.mjs"):
        shutil.copyfile(TFJS_DIR / name, TFJS_CACHE / name)
    if not (stamp.is_file() and stamp.read_text().strip() == wanted):
        cmd = ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
        print("+", " ".join(cmd), f"(in {TFJS_CACHE})", file=sys.stderr, flush=True)
        subprocess.run(cmd, cwd=TFJS_CACHE, check=True)
        stamp.write_text(wanted + "\n")
    return TFJS_CACHE / "reference.mjs"


@dataclass(frozen=True)
class TfjsJob:
    name: str
    model_json: Path
    batch: Floats
    outputs: dict[str, str]
    batch_size: int = 8


def run_tfjs(jobs: list[TfjsJob]) -> dict[str, Any]:
    """tfjs's outputs (``{model: {"seconds", "outputs": {name: array}}}``) and its version."""
    runner = ensure_tfjs()
    with tempfile.TemporaryDirectory(prefix="tfjs-") as tmp:
        described: list[dict[str, Any]] = []
        for job in jobs:
            path = Path(tmp) / f"{len(described)}.f32"
            np.ascontiguousarray(job.batch, dtype="<f4").tofile(path)
            described.append(
                {
                    "name": job.name,
                    "json": str(job.model_json),
                    "input": str(path),
                    "shape": list(job.batch.shape),
                    "outputs": job.outputs,
                    "batch": job.batch_size,
                }
            )
        (Path(tmp) / "job.json").write_text(json.dumps({"models": described}))
        subprocess.run(
            ["node", str(runner), str(Path(tmp) / "job.json"), str(Path(tmp) / "out.json")],
            check=True,
        )
        result: dict[str, Any] = json.loads((Path(tmp) / "out.json").read_text())
    for model in result["models"].values():
        for name, out in model["outputs"].items():
            model["outputs"][name] = np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])
    return result


# -- the crops ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceCrop:
    source: str
    face: Square
    eye_left: Square  # the eye on the image's left (Rekognition's leftEye*)
    eye_right: Square  # mirrored for iris, as human does
    pixels: npt.NDArray[np.uint8]
    """The whole image (the face detector's input)."""

    def document(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "face": [self.face.centre_x_px, self.face.centre_y_px, self.face.side_px],
            "eye_left": [
                self.eye_left.centre_x_px,
                self.eye_left.centre_y_px,
                self.eye_left.side_px,
            ],
            "eye_right": [
                self.eye_right.centre_x_px,
                self.eye_right.centre_y_px,
                self.eye_right.side_px,
            ],
        }


def _landmark(face: DetectedFace, name: str, width: int, height: int) -> tuple[float, float]:
    for mark in face.landmarks:
        if mark.name == name:
            return (mark.x_ratio * width, mark.y_ratio * height)
    raise KeyError(name)


def crop_of(engine: FaceEngine, path: Path, label: str) -> FaceCrop | None:
    """The largest face in ``path``, cropped as documented (None if no face is found)."""
    try:
        image = engine.decode(path.read_bytes())
        faces = engine.detect(image)
    except FacegateError:
        return None
    if not faces:
        return None
    face = faces[0]
    w, h = image.source_width_px or image.width_px, image.source_height_px or image.height_px
    if (w, h) != (image.width_px, image.height_px):
        return None  # reduced decode: keep the crops in the decoded pixels' own frame
    eye_l = eye_square(_landmark(face, "leftEyeLeft", w, h), _landmark(face, "leftEyeRight", w, h))
    eye_r = eye_square(
        _landmark(face, "rightEyeLeft", w, h), _landmark(face, "rightEyeRight", w, h)
    )
    return FaceCrop(label, face_square(face.box_px), eye_l, eye_r, image.pixels)


def gather_crops(count: int) -> list[FaceCrop]:
    """Up to ``count`` faces: a third each from the samples, LFW and FairFace (sorted order)."""
    engine = FaceEngine(EngineConfig())
    sources = [
        sorted(p for p in SAMPLES.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES),
        sorted((DATA / "lfw" / "images").rglob("*.jpg")),
        sorted((DATA / "fairface_val" / "images").rglob("*.jpg")),
    ]
    crops: list[FaceCrop] = []
    for i, paths in enumerate(sources):
        share = count // 3 + (1 if i < count % 3 else 0)
        taken = 0
        for path in paths:
            if taken >= share:
                break
            crop = crop_of(engine, path, str(path.relative_to(DATA)))
            if crop is not None:
                crops.append(crop)
                taken += 1
    return crops


def model_batch(spec: ModelSpec, crops: list[FaceCrop]) -> Floats:
    """The model's input batch for the crops (iris: two eyes per crop, the right one mirrored;
    the face detector: each crop's whole image, letterboxed as ``engine.blazeface`` does)."""
    if spec.name == BLAZEFACE_MODEL:
        return np.concatenate([letterbox(c.pixels)[0] for c in crops])
    if spec.name == "iris":
        eyes = []
        for c in crops:
            eyes += [c.eye_left.crop(c.pixels), c.eye_right.crop(c.pixels, mirror=True)]
        return prepare_batch(spec.input, eyes)
    faces = [c.face.crop(c.pixels) for c in crops]
    if spec.name == "gear":
        faces = [fraction_crop(f, 0.0, 0.1, 0.9, 0.9) for f in faces]
    return prepare_batch(spec.input, faces)


# -- onnxruntime and the comparison ---------------------------------------------------------------


def onnx_session(data: bytes) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def run_batch(session: Any, spec: ModelSpec, batch: Floats) -> dict[str, Floats]:
    """Outputs for the whole batch: in one run, or one item at a time for a graph of a fixed
    batch size of 1 (``ModelSpec.batch_size``)."""
    names = [o.name for o in spec.outputs]
    if spec.batch_size is None:
        return dict(zip(names, session.run(names, {spec.input.name: batch}), strict=True))
    runs = [session.run(names, {spec.input.name: batch[i : i + 1]}) for i in range(len(batch))]
    return {n: np.concatenate([r[k] for r in runs]) for k, n in enumerate(names)}


def run_onnx(session: Any, spec: ModelSpec, batch: Floats) -> tuple[dict[str, Floats], float]:
    """Outputs for the whole batch, and the median seconds per item run one at a time."""
    names = [o.name for o in spec.outputs]
    outputs = run_batch(session, spec, batch)
    times = []
    for i in range(len(batch)):
        t0 = time.perf_counter()
        session.run(names, {spec.input.name: batch[i : i + 1]})
        times.append(time.perf_counter() - t0)
    return outputs, statistics.median(times)


def compare(spec: ModelSpec, got: dict[str, Floats], ref: dict[str, Floats]) -> dict[str, Any]:
    per_output: dict[str, Any] = {}
    for out in spec.outputs:
        a = got[out.name].reshape(len(got[out.name]), -1).astype(np.float64)
        b = ref[out.name].reshape(len(ref[out.name]), -1).astype(np.float64)
        diff = np.abs(a - b)
        scale = float(np.abs(b).max())
        floor = max(1e-3 * scale, 1e-12)
        row: dict[str, Any] = {
            "max_abs": float(diff.max()),
            "max_rel": float((diff / np.maximum(np.abs(b), floor)).max()),
            "max_abs_tfjs": scale,
        }
        if a.shape[1] > 1 and "softmax" in out.meaning:
            row["argmax_agree"] = float(np.mean(a.argmax(1) == b.argmax(1)))
        if out.name == "descriptor":
            cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            row["min_cosine"] = float(cos.min())
        per_output[out.name] = row
    return per_output


def converted_models(source: Path, names: list[str]) -> dict[str, bytes]:
    files, _ = read_package(source, names)
    out = {}
    for name in names:
        out[name], _ = convert_model(model_spec(name), lambda rel: files[f"models/{rel}"])
    return out


def write_model_sources(source: Path, names: list[str], folder: Path) -> dict[str, Path]:
    """The original model files, unpacked for node to read."""
    files, _ = read_package(source, names)
    paths = {}
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    for name in names:
        paths[name] = folder / "models" / f"{name}.json"
    return paths


def job(name: str, model_json: Path, batch: Floats) -> TfjsJob:
    spec = model_spec(name)
    return TfjsJob(name, model_json, batch, spec.output_map, spec.batch_size or 8)


# -- the two jobs ---------------------------------------------------------------------------------


def equivalence(args: argparse.Namespace, names: list[str]) -> None:
    crops = gather_crops(args.crops)
    print(f"{len(crops)} face crops", file=sys.stderr, flush=True)
    onnx = converted_models(args.source, names)
    batches = {n: model_batch(model_spec(n), crops) for n in names}
    with tempfile.TemporaryDirectory(prefix="tfjs-src-") as tmp:
        paths = write_model_sources(args.source, names, Path(tmp))
        jobs = [job(n, paths[n], batches[n]) for n in names]
        tfjs = run_tfjs(jobs)
    rows: dict[str, Any] = {}
    for name in names:
        spec = model_spec(name)
        got, onnx_s = run_onnx(onnx_session(onnx[name]), spec, batches[name])
        ref = tfjs["models"][name]["outputs"]
        rows[name] = {
            "items": len(batches[name]),
            "onnx_ms_per_item": 1000 * onnx_s,
            "tfjs_ms_per_item": 1000 * tfjs["models"][name]["seconds"] / len(batches[name]),
            "outputs": compare(spec, got, ref),
        }
    info = machine_info()
    print(f"TensorFlow.js {tfjs['tfjs_version']} ({tfjs['backend']}) vs onnxruntime "
          f"{ort.__version__}, {len(crops)} face crops")  # fmt: skip
    print(
        f"{'model':20} {'output':18} {'items':>5} {'max abs':>10} {'max rel':>10} "
        f"{'|tfjs| max':>10} {'argmax':>7} {'ms onnx':>8} {'ms tfjs':>8}"
    )
    for name, row in rows.items():
        for i, (out, r) in enumerate(row["outputs"].items()):
            agree = r.get("argmax_agree", r.get("min_cosine"))
            agree_text = "-" if agree is None else f"{agree:.4f}"
            times = (
                f"{row['onnx_ms_per_item']:8.2f} {row['tfjs_ms_per_item']:8.1f}"
                if i == 0
                else f"{'':8} {'':8}"
            )
            print(
                f"{name if i == 0 else '':20} {out:18} {row['items']:>5} {r['max_abs']:10.2e} "
                f"{r['max_rel']:10.2e} {r['max_abs_tfjs']:10.3g} {agree_text:>7} {times}"
            )
    print("argmax: share of items whose top class agrees (descriptor: smallest cosine)")
    print(machine_line(info))
    path = write_results(
        args.out,
        {
            "machine": info,
            "tfjs_version": tfjs["tfjs_version"],
            "tfjs_backend": tfjs["backend"],
            "onnxruntime": ort.__version__,
            "crops": [c.document() for c in crops],
            "models": rows,
        },
    )
    print(f"wrote {path}")


def _f32(array: npt.ArrayLike) -> dict[str, Any]:
    a = np.asarray(array, dtype="<f4")
    return {"shape": list(a.shape), "f32": base64.b64encode(a.tobytes()).decode()}


def write_references(args: argparse.Namespace, names: list[str]) -> None:
    TEST_DATA.mkdir(parents=True, exist_ok=True)
    # 1. Synthetic graphs, one or a few ops each.
    cases = case_documents()
    with tempfile.TemporaryDirectory(prefix="tfjs-cases-") as tmp:
        jobs = []
        for case in cases:
            folder = Path(tmp) / case["name"]
            folder.mkdir()
            (folder / "model.json").write_text(json.dumps(case["model"]))
            (folder / "weights.bin").write_bytes(base64.b64decode(case["weights_b64"]))
            values = np.asarray(case["input"], dtype=np.float32).reshape(case["input_shape"])
            jobs.append(TfjsJob(case["name"], folder / "model.json", values, case["outputs"]))
        tfjs = run_tfjs(jobs)
    for case in cases:
        outs = tfjs["models"][case["name"]]["outputs"]
        case["input"] = _f32(
            np.asarray(case.pop("input"), dtype=np.float32).reshape(case.pop("input_shape"))
        )
        case["expected"] = {k: _f32(v) for k, v in outs.items()}
    doc = {"tfjs_version": tfjs["tfjs_version"], "backend": tfjs["backend"], "cases": cases}
    (TEST_DATA / "tfjs_op_cases.json").write_text(_one_per_line(doc, "cases"))
    # 2. The real models on four PNG sample crops.
    engine = FaceEngine(EngineConfig())
    crops = []
    for rel in REFERENCE_IMAGES:
        crop = crop_of(engine, SAMPLES / rel, f"samples/{rel}")
        if crop is None:
            sys.exit(f"no face found in samples/{rel}")
        crops.append(crop)
    batches = {n: model_batch(model_spec(n), crops) for n in names}
    with tempfile.TemporaryDirectory(prefix="tfjs-src-") as tmp:
        paths = write_model_sources(args.source, names, Path(tmp))
        tfjs = run_tfjs([job(n, paths[n], batches[n]) for n in names])
    # with --models, only those entries change; the others stay as written before
    reference = TEST_DATA / "tfjs_model_reference.json"
    models = json.loads(reference.read_text())["models"] if args.models else {}
    for name in names:
        models[name] = {
            "input_sha256": hashlib.sha256(
                np.ascontiguousarray(batches[name], "<f4").tobytes()
            ).hexdigest(),
            "expected": {k: _f32(v) for k, v in tfjs["models"][name]["outputs"].items()},
        }
    doc = {
        "tfjs_version": tfjs["tfjs_version"],
        "backend": tfjs["backend"],
        "crops": [c.document() for c in crops],
        "models": models,
    }
    (TEST_DATA / "tfjs_model_reference.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {TEST_DATA / 'tfjs_op_cases.json'} and {TEST_DATA / 'tfjs_model_reference.json'}")


def _one_per_line(doc: dict[str, Any], key: str) -> str:
    """JSON with each item of ``doc[key]`` on one line (compact, yet a diff shows which)."""
    head = {k: v for k, v in doc.items() if k != key}
    items = ",\n".join(json.dumps(item, separators=(",", ":")) for item in doc[key])
    return json.dumps(head)[:-1] + f', "{key}": [\n' + items + "\n]}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", type=int, default=50, help="face crops (default 50)")
    parser.add_argument("--models", default=None, help="comma-separated (default: all)")
    parser.add_argument(
        "--source",
        type=Path,
        default=default_models_dir() / "source",
        help="the package: .tgz or folder (default: the models folder's source/)",
    )
    parser.add_argument("--write-references", action="store_true", help="write the tests' data")
    parser.add_argument(
        "--out", default="tfjs_equivalence", help="results file name (default tfjs_equivalence)"
    )
    args = parser.parse_args()
    names = args.models.split(",") if args.models else [s.name for s in CATALOGUE]
    if args.write_references:
        write_references(args, names)
    else:
        equivalence(args, names)


if __name__ == "__main__":
    main()
