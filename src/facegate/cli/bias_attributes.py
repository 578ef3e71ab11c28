"""``facegate bias classifier --estimate KIND``: facegate's own attribute estimators, audited.

The estimators run on a labelled data set as the server runs them for ``DetectFaces`` (the
engine's detector chain, the largest face, every available estimator; answers cached by image,
so a re-run is instant: :mod:`facegate.bias.attributes`), and their answers go through the same
Gender Shades table as another system's predictions (:mod:`facegate.bias.attribute_audit`).
The model-backed estimators are switched on here for the audit (as
``FACEGATE_ATTRIBUTE_MODELS=faceres,emotion`` would on a server); the models must be set up
(``facegate models list``). Examples::

    facegate bias classifier --estimate gender --dataset fairface --group-by race,gender
    facegate bias classifier --estimate age --dataset fairface --group-by race4,gender
    facegate bias classifier --estimate gender --dataset lfw --one-per-subject \\
        --group-by race,gender
    facegate bias classifier --estimate happy --dataset lfw \\
        --labels ../shared/data/lfw_attributes/manual_2026.csv --group-by gender

Beside the tables: the estimator's version and rule, the images per group where no face was
found (not counted as errors, never hidden), for ``gender`` the published worst-group figures
(Gender Shades 2018, Raji & Buolamwini 2019), for ``age`` the share of ranges overlapping the
labelled bin and the years between the range's middle and the bin, per group.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from facegate.bias.attribute_audit import (
    ESTIMATES,
    REFERENCES,
    AgeGroup,
    EstimateRows,
    age_group_json,
    age_table,
    estimate_rows,
)
from facegate.bias.attributes import AttributeCache, AttributeSet, compute_attributes
from facegate.bias.classifier import ClassifierAudit, audit
from facegate.bias.datasets import (
    DatasetError,
    Manifest,
    load_csv,
    load_fairface,
    load_lfw_images,
    one_per_subject,
)
from facegate.cli.bias_classifier import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    _truth_column,
    command_line,
    render,
    report_json,
    write_reports,
)
from facegate.cli.bias_data import deprecated
from facegate.engine.attributes.face_models import EMOTION, FACERES
from facegate.engine.attributes.registry import chosen_specs
from facegate.engine.attributes.types import Attribute, EstimatorSpec, FaceModels
from facegate.engine.core import EngineConfig
from facegate.engine.human_models import model_status
from facegate.errors import EngineUnavailableError

FOLDERS = {"fairface": "fairface_val", "lfw": "lfw"}


def audit_config(
    models_dir: Path | None = None, enabled: frozenset[str] = frozenset({FACERES, EMOTION})
) -> EngineConfig:
    """The engine of an audit: the server's defaults with the face models ``enabled`` (by
    default faceres and emotion: the model-backed estimators are audited)."""
    return EngineConfig(face_models=FaceModels(enabled=enabled, models_dir=models_dir))


def chosen_spec(config: EngineConfig, attribute: str) -> EstimatorSpec:
    """The estimator an engine of ``config`` uses for ``attribute``
    (``attributes.registry.chosen_specs``)."""
    return chosen_specs(config.face_models.enabled)[Attribute(attribute)]


def load_estimate_manifest(args: argparse.Namespace) -> Manifest:
    """The data set of ``--dataset`` (``--data``, ``--labels``, ``--one-per-subject``)."""
    if args.dataset not in FOLDERS:  # a manifest CSV (or the deprecated csv + --data FILE)
        if args.dataset == "csv" and args.data is None:
            raise DatasetError("--dataset csv needs the manifest: pass it as --dataset FILE.csv")
        path = args.data if args.dataset == "csv" else Path(args.dataset)
        if args.dataset == "csv":
            deprecated("--dataset csv --data FILE", "pass the CSV as --dataset FILE.csv")
            args.dataset, args.data = str(path), None
        manifest = load_csv(path)
    else:
        root = args.data if args.data is not None else args.data_root / FOLDERS[args.dataset]
        if not root.is_dir():
            raise DatasetError(f"data folder not found: {root} (pass --data-root DIR)")
        if args.labels is not None and args.dataset != "lfw":
            raise DatasetError("--labels goes with --dataset lfw")
        if args.dataset == "fairface":
            manifest = load_fairface(root)
        else:
            manifest = load_lfw_images(root, args.labels)
    for name, values in args.where or ():
        manifest = where(manifest, name, values)
    return one_per_subject(manifest) if args.one_per_subject else manifest


def where(manifest: Manifest, name: str, values: tuple[str, ...]) -> Manifest:
    """The samples whose attribute ``name`` is one of ``values`` (``--where``)."""
    if not any(name in s.attributes for s in manifest.samples):
        raise DatasetError(f"--where: {manifest.name} has no attribute {name!r}")
    kept = tuple(s for s in manifest.samples if s.attributes.get(name) in values)
    if not kept:
        raise DatasetError(f"--where: no image of {manifest.name} has {name} in {values}")
    return Manifest(f"{manifest.name} ({name} in {', '.join(values)})", kept)


def _check_models(config: EngineConfig, attribute: str) -> None:
    spec = chosen_spec(config, attribute)
    if spec.model is None:
        return
    status = model_status(spec.model, config.face_models.models_dir)
    if not status.available:
        raise DatasetError(f"{attribute} needs the face model {spec.model}: {status.reason}")


# --- rendering -----------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ci(interval: Any) -> str:
    return "-" if not interval else f"[{100 * interval[0]:.1f}%, {100 * interval[1]:.1f}%]"


def _years(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_age(groups: tuple[AgeGroup, ...], title: str) -> list[str]:
    width = max([24, *(len(g.group) for g in groups)])
    lines = [
        "",
        f"AgeRange against the labelled bin, {title}",
        f"  {'group':<{width}} {'n':>6} {'middle in bin':>14} {'95% CI':>16} "
        f"{'range overlaps':>15} {'95% CI':>16} {'years out med/mean':>19} {'width med':>9}",
    ]
    for g in groups:
        inside, inside_ci = g.share(g.middle_inside)
        overlap, overlap_ci = g.share(g.overlap)
        mark = "*" if g.too_small else " "
        lines.append(
            f"  {g.group:<{width}} {g.n:>6}{mark}{_pct(inside):>14} {_ci(inside_ci):>16} "
            f"{_pct(overlap):>15} {_ci(overlap_ci):>16} "
            f"{_years(g.years_outside_median):>9} / {_years(g.years_outside_mean):<7} "
            f"{_years(g.width_median):>9}"
        )
    return lines


def _no_face_lines(rows: EstimateRows) -> list[str]:
    lines = ["", "Images with no face found (not in the tables; the server would answer no face):"]
    for group in sorted(rows.images):
        if group == "overall":
            continue
        n, missed = rows.images[group], rows.no_face.get(group, 0)
        lines.append(f"  {group:<36} {missed:>5} of {n:>6} ({_pct(missed / n if n else None)})")
    total = rows.images.get("overall", 0)
    missed = rows.no_face.get("overall", 0)
    lines.append(
        f"  {'overall':<36} {missed:>5} of {total:>6} ({_pct(missed / total if total else None)})"
    )
    lines.append(
        f"  images without a truth label: {rows.no_label}; faces without an estimate: "
        f"{rows.no_estimate}; images the engine refused: {rows.errors}"
    )
    return lines


def _reference_lines(result: ClassifierAudit) -> list[str]:
    s = result.intersectional.summary
    lines = [
        "",
        f"Worst group here: {', '.join(s.max_groups) or '-'} {_pct(s.group_max)} error "
        f"(best {', '.join(s.min_groups) or '-'} {_pct(s.group_min)}). Published, on other data:",
    ]
    for ref in REFERENCES:
        lines.append(
            f"  {100 * ref['error_rate']:.2f}%  {ref['study']}: {ref['system']}, {ref['group']}"
        )
    lines.append(
        "  (PPB's groups are Fitzpatrick skin types of adults in official portraits; these are"
        " a data set's own labels: compare orders of magnitude, not decimals)"
    )
    return lines


def fit_overlap(config: EngineConfig, attribute: str, dataset: str) -> str:
    """What to say when the audited estimator was fitted on part of the audited data (the
    default AgeRange and Gender on FairFace val), else ``""``."""
    if dataset != "fairface" or chosen_spec(config, attribute).model is not None:
        return ""
    if attribute not in ("GENDER", "AGE_RANGE"):
        return ""
    return (
        "this estimator was fitted on half of FairFace val, which this table includes: its "
        "errors here are optimistic. Held-out figures: bench/attribute_demographics.py "
        "(docs/attributes.md)."
    )


def _estimator(config: EngineConfig, results: AttributeSet, attribute: str) -> dict[str, Any]:
    spec = chosen_spec(config, attribute)
    return {
        "attribute": attribute,
        "version": results.versions.get(attribute),
        "method": spec.method,
        "model": spec.model,
        "versions": dict(results.versions),
        "cache_key": results.key,
        "detector": str(config.detector.kind),
    }


def cmd_estimate(args: argparse.Namespace, out: TextIO) -> int:
    """Run (or read from the cache) the estimator over the data set and report its table."""
    kind = args.estimate
    spec = ESTIMATES[kind]
    try:
        if args.predictions is not None:
            raise DatasetError("--estimate makes the predictions: give no predictions CSV")
        manifest = load_estimate_manifest(args)
        config = audit_config(enabled=frozenset(args.attribute_models))
        _check_models(config, spec.attribute)
        results = compute_attributes(
            manifest,
            config,
            cache=AttributeCache(args.cache),
            workers=args.workers,
            progress=not args.no_progress,
        )
        rows = estimate_rows(
            kind,
            manifest,
            results,
            args.group_by,
            _truth_column(args),
            keep_errors=args.list_errors,
        )
        if rows.counts.rows == 0:
            raise DatasetError(f"no face of {manifest.name} has both a label and an estimate")
        result = audit(rows.counts, args.min_n)
    except (DatasetError, OSError, EngineUnavailableError) as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    command = command_line(args)
    estimator = _estimator(config, results, spec.attribute)
    provenance = sorted({s.provenance for s in manifest.samples})
    lines = render(result, command)
    lines[1:3] = [
        f"estimator: {spec.attribute} {estimator['version']}: {estimator['method']}",
        f"data: {manifest.name}: {'; '.join(provenance)}",
        f"images: {results.summary()}",
        f"error = {spec.error}; truth: {rows.truth_attribute}",
    ]
    lines += _no_face_lines(rows)
    overlap = fit_overlap(config, spec.attribute, args.dataset)
    if overlap:
        lines.append(f"note: {overlap}")
    report = report_json(result, command)
    if overlap:
        report["note"] = overlap
    report.update(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        estimator=estimator,
        dataset=f"{manifest.name}: {'; '.join(provenance)}",
        error_definition=spec.error,
        truth_attribute=rows.truth_attribute,
        inputs=[],
        images={
            "per_group": dict(rows.images),
            "no_face": dict(rows.no_face),
            "no_label": rows.no_label,
            "no_estimate": rows.no_estimate,
            "refused": rows.errors,
            "computed": results.computed,
            "from_cache": results.from_cache,
        },
    )
    if kind == "gender":
        lines += _reference_lines(result)
        report["references"] = [dict(r) for r in REFERENCES]
    if kind == "age":
        tables = [tuple(rows.group_by)]
        if len(rows.group_by) > 1:
            tables += [(a,) for a in rows.group_by]
        report["age"] = []
        for attrs in tables:
            groups = age_table(rows.age, rows.group_by, attrs, args.min_n)
            lines += render_age(groups, "by " + " x ".join(attrs))
            report["age"].append(
                {"attributes": list(attrs), "groups": [age_group_json(g) for g in groups]}
            )
    print("\n".join(lines), file=out)
    try:
        write_reports(args, report)
    except OSError as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK
