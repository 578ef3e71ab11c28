"""Do the calibrations keep their promise on the current detector chain? Side by side in one run:
each model's calibration files (raw distance and cohort-normalised score) applied to the bias
toolkit's cached descriptors of two detector chains, and to pairs of one chain against the other.

    PYTHONPATH=src:bench nice -n 10 .venv/bin/python bench/chain_calibration.py \\
        [--old-key-suffix 6dc3ae0a3a92955c] [--calibrations before=DIR ...]

Chains (descriptor cache keys, ``facegate.bias.descriptors.config_key``; nothing is computed,
a missing key is an error):

* ``old``: the key the shipped files were fitted on (``--old-key-suffix``; default the MTCNN
  chain before BlazeFace led search probes, ``...6dc3ae0a3a92955c``);
* ``new``: the current engine's key (every image described as a search probe: BlazeFace first);
* ``mixed``: a ``new`` probe against an ``old`` face of another image (ordered pairs): what a
  server pairs, since IndexFaces still runs the chain alone.

Held-out data only, for every file measured (the shipped ones and refits alike): LFW's held-out
half (split by the salted hash of the person, the same under both chains), the FairFace val
images held out under *both* chains' splits (``split_source`` keys FairFace by the index of a
found face, so a chain that finds other faces moves images between halves: only images held out
under both are out of sample for a file fitted on either), and the 879 Congress portraits (never
fitted). LFW View 2 too (10-fold accuracy, TAR at FAR 1e-3) on each chain and mixed. At each
Similarity of the calibration table: the pooled FMR of LFW and FairFace (equal
weights, the quantity the calibration promises) and its ratio to the promise, each data set's
FMR, and LFW's FNMR. Prints the table; writes ``bench/results/chain_calibration.json``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchlib import ROOT, machine_info, machine_line, write_results
from facegate.bias.calibration import (
    TABLE_SIMILARITIES,
    PairTail,
    Source,
    pair_tail,
    split_keys,
    table,
)
from facegate.bias.calibration_run import calibration_source
from facegate.bias.datasets import Manifest, Pair, load_congress, load_fairface, load_lfw
from facegate.bias.descriptors import FACE, DescriptorCache, DescriptorSet, _assemble, config_key
from facegate.bias.folds import cross_validate
from facegate.engine.core import EngineConfig
from facegate.engine.descriptors import DLIB_RESNET_V1, FACERES_V1, FUSED_DLIB_FACERES_V1
from facegate.engine.matching import Matcher, matcher_for
from facegate.engine.models import file_sha256
from facegate.engine.similarity import PiecewiseSimilarity
from lfw import tar_at_far

MODELS = (DLIB_RESNET_V1, FACERES_V1, FUSED_DLIB_FACERES_V1)
OLD_SUFFIX = "6dc3ae0a3a92955c"
SCORERS = {"raw": "none", "cohort": "cohort"}


@dataclass(frozen=True)
class Chain:
    """One data set's descriptors under one cache key (rows aligned with the manifest)."""

    name: str
    key: str
    set: DescriptorSet


def cached_set(manifest: Manifest, key: str, digests: list[str]) -> DescriptorSet:
    """The cached descriptors of ``manifest`` under ``key``; ``SystemExit`` if any is missing."""
    records = DescriptorCache().get_many(key, digests)
    missing = len(set(digests)) - len(records)
    if missing:
        raise SystemExit(f"{manifest.name}: {missing} images have no descriptor under {key}")
    return _assemble(key.split("|")[0], key, digests, records, 0, len(records))


def held_images(manifest: Manifest, sets: list[DescriptorSet]) -> np.ndarray:
    """Mask of the manifest's images held out under every set's split (``split_source``: by
    person when known, else by the index among found faces) and found by every set."""
    n = len(manifest.samples)
    held = np.ones(n, dtype=bool)
    for s in sets:
        found = np.array([st == FACE for st in s.statuses])
        held &= found
        src = calibration_source(manifest, s)
        keys = src.subjects or tuple(f"face-{i}" for i in range(len(src.vectors)))
        fit = split_keys(keys)
        image_held = np.zeros(n, dtype=bool)
        image_held[np.flatnonzero(found)[~fit]] = True
        held &= image_held
    return held


def source_of(manifest: Manifest, s: DescriptorSet, mask: np.ndarray) -> Source:
    """The faces of ``mask`` (all found in ``s``) as a calibration source."""
    full = calibration_source(manifest, s)
    found = np.flatnonzero([st == FACE for st in s.statuses])
    return full.take(mask[found])


def mixed_tail(probe: Source, face: Source, m: Matcher, cap: float, block: int = 512) -> PairTail:
    """Every ordered pair (``probe`` row i, ``face`` row j), i != j (the same images in the
    same order, two chains' vectors): impostor scores up to ``cap`` and every mated one."""
    x, y = probe.vectors.astype(np.float64), face.vectors.astype(np.float64)
    sx, sy = m.stats(x), m.stats(y)
    if probe.subjects is None:
        subj = np.arange(len(x))
    else:
        _, subj = np.unique(np.asarray(probe.subjects), return_inverse=True)
    tails, mated, impostors = [], [], 0
    for start in range(0, len(x), block):
        stop = min(len(x), start + block)
        d = m.space.pairwise(x[start:stop], y, m.weights)
        scores = m.scorer.scores(d, sx[start:stop, None], sy[None, :])
        rows = np.arange(start, stop)[:, None]
        other = rows != np.arange(len(y))[None, :]
        same = (subj[start:stop, None] == subj[None, :]) & other
        impostor = other & ~same
        impostors += int(impostor.sum())
        tails.append(scores[impostor & (scores <= cap)])
        mated.append(scores[same])
    return PairTail(
        probe.name,
        cap,
        np.sort(np.concatenate(tails)),
        impostors,
        np.sort(np.concatenate(mated)),
        {},
    )


def measure(m: Matcher, tails: list[PairTail], extra: list[PairTail]) -> list[dict[str, Any]]:
    """The calibration table on ``tails`` (pooled FMR: these, equally weighted), plus each
    ``extra`` data set's FMR at the same scores."""
    rows = []
    mapping = getattr(m.similarity, "mapping", m.similarity)
    assert isinstance(mapping, PiecewiseSimilarity)
    for row in table(tails, mapping, TABLE_SIMILARITIES, min_pairs=100):
        d = row["distance"]
        out = {
            "similarity_pct": row["similarity_pct"],
            "score": d,
            "target_fmr": row["target_fmr"],
            "pooled_fmr": row["pooled_fmr"],
            "ratio": row["pooled_fmr"] / row["target_fmr"],
            "fmr": {k: v["fmr"]["rate"] for k, v in row["datasets"].items()},
            "fmr_errors": {k: v["fmr"]["errors"] for k, v in row["datasets"].items()},
            "lfw_fnmr": row["datasets"]["lfw"]["fnmr"]["rate"],
        }
        for t in extra:
            errors, total = t.fmr(d)
            out["fmr"][t.name] = errors / total
            out["fmr_errors"][t.name] = errors
        rows.append(out)
    return rows


def view2(m: Matcher, old: np.ndarray, new: np.ndarray, pairs: list[Pair]) -> dict[str, Any]:
    """LFW View 2 10-fold accuracy and TAR at FAR 1e-3 of one matcher on each chain's vectors,
    and mixed: the current chain's probe against the earlier chain's face, each pair both ways
    round (the mean of the two orientations' accuracies; TAR over the 12,000 scored pairs)."""
    left = np.array([p.left for p in pairs])
    right = np.array([p.right for p in pairs])
    mated = np.array([p.mated for p in pairs])
    folds = np.array([-1 if p.fold is None else p.fold for p in pairs])

    def scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        sa, sb = m.stats(a), m.stats(b)
        d = m.space.paired(a[left], b[right], m.weights)
        out: np.ndarray = m.scorer.scores(d, sa[left], sb[right])
        return out

    def accuracy(d: np.ndarray) -> float:
        return float(np.mean(cross_validate(d, mated, folds).accuracies))

    x_old, x_new = old.astype(np.float64), new.astype(np.float64)
    out: dict[str, Any] = {}
    for chain, (a, b) in {"old": (x_old, x_old), "new": (x_new, x_new)}.items():
        d = scores(a, b)
        out[chain] = {"lfw_accuracy": accuracy(d), "tar_view2": tar_at_far(d, mated, 1e-3)[0]}
    one, other = scores(x_new, x_old), scores(x_old, x_new)
    both = np.concatenate([one, other])
    out["mixed"] = {
        "lfw_accuracy": (accuracy(one) + accuracy(other)) / 2,
        "tar_view2": tar_at_far(both, np.concatenate([mated, mated]), 1e-3)[0],
    }
    return out


def matchers(model: str, folders: dict[str, Path | None]) -> dict[tuple[str, str], Matcher]:
    """(calibration label, scorer) -> the model's matcher from that folder's files."""
    spec = EngineConfig().registry().get(model)
    out = {}
    for label, folder in folders.items():
        where = spec if folder is None else replace(spec, calibration_dir=folder)
        for scorer, normalisation in SCORERS.items():
            m = matcher_for(where, normalisation)
            if (scorer == "cohort") != m.normalised:
                raise SystemExit(f"{label}: {model} has no {scorer} calibration")
            out[(label, scorer)] = m
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--old-key-suffix", default=OLD_SUFFIX)
    ap.add_argument(
        "--calibrations",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="also measure the calibration files in DIR (e.g. before a refit)",
    )
    ap.add_argument("--json", default="chain_calibration")
    args = ap.parse_args()
    started = time.time()
    folders: dict[str, Path | None] = {"shipped": None}
    for item in args.calibrations:
        label, _, folder = item.partition("=")
        folders[label] = Path(folder)
    lfw, pairs = load_lfw(args.data / "lfw")
    manifests = (
        lfw,
        load_fairface(args.data / "fairface_val"),
        load_congress(args.data / "congress_2015"),
    )
    digests = [[file_sha256(s.path) for s in m.samples] for m in manifests]
    config = EngineConfig()
    results: dict[str, Any] = {}
    data_note: dict[str, Any] = {}
    for model in MODELS:
        keys = {
            "old": f"{model}|{config.detector.kind}|{args.old_key_suffix}",
            "new": config_key(config, model, True),
        }
        sets = {
            c: [cached_set(m, k, d) for m, d in zip(manifests, digests, strict=True)]
            for c, k in keys.items()
        }
        masks = [
            held_images(m, [sets["old"][i], sets["new"][i]]) for i, m in enumerate(manifests[:2])
        ]
        # Congress is never fitted: every portrait both chains found
        masks.append(
            np.array(
                [a == b == FACE for a, b in zip(*(sets[c][2].statuses for c in keys), strict=True)]
            )
        )
        data_note[model] = {
            "keys": keys,
            "faces": {m.name: int(mask.sum()) for m, mask in zip(manifests, masks, strict=True)},
        }
        sources = {
            c: [source_of(m, s, mask) for m, s, mask in zip(manifests, sets[c], masks, strict=True)]
            for c in keys
        }
        for (label, scorer), m in matchers(model, folders).items():
            mapping = getattr(m.similarity, "mapping", m.similarity)
            cap = mapping.distance_for(min(TABLE_SIMILARITIES)) + 1e-9
            entry: dict[str, Any] = {"similarity_version": m.version}
            for chain in ("old", "new"):
                tails = [
                    pair_tail(s, cap, scorer=m.scorer, space=m.space, weights=m.weights)
                    for s in sources[chain]
                ]
                entry[chain] = measure(m, tails[:2], tails[2:])
            mixed = [mixed_tail(sources["new"][i], sources["old"][i], m, cap) for i in range(3)]
            entry["mixed"] = measure(m, mixed[:2], mixed[2:])
            entry["view2"] = view2(m, sets["old"][0].vectors, sets["new"][0].vectors, pairs)
            results.setdefault(model, {}).setdefault(label, {})[scorer] = entry
            print(f"{model} {label} {scorer}: done ({time.time() - started:.0f} s)", flush=True)
    doc: dict[str, Any] = {
        "kind": "chain-calibration",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "PYTHONPATH=src:bench nice -n 10 .venv/bin/python bench/chain_calibration.py "
        + " ".join(f"--calibrations {c}" for c in args.calibrations),
        "data": data_note,
        "calibrations": {
            k: str(v) if v else "src/facegate/engine/calibration" for k, v in folders.items()
        },
        "results": results,
    }
    doc["machine"] = machine_info()
    doc["seconds"] = round(time.time() - started, 1)
    print(machine_line(doc["machine"]))
    print("\n".join(render(doc)))
    print()
    print("\n".join(render_view2(doc)))
    print(f"wrote {write_results(args.json, doc)}")


def render(doc: dict[str, Any]) -> list[str]:
    """One row per model, calibration, scorer and chain: the pooled held-out FMR / promise at
    each Similarity, and LFW's FNMR at 90 and 99."""
    sims = [
        r["similarity_pct"]
        for r in next(iter(next(iter(doc["results"].values())).values()))["raw"]["old"]
    ]
    head = " | ".join(f"S {s:g}: FMR/promise" for s in sims)
    lines = [
        f"| model | files | scorer | pairs | {head} | Congress FMR at S 90 "
        "| LFW FNMR at S 90 / 99 |",
        "|---|---|---|---|" + "---|" * (len(sims) + 2),
    ]
    for model, by_label in doc["results"].items():
        for label, by_scorer in by_label.items():
            for scorer, entry in by_scorer.items():
                for chain in ("old", "new", "mixed"):
                    rows = entry[chain]
                    at = {r["similarity_pct"]: r for r in rows}
                    cells = " | ".join(f"{r['ratio']:.2f}" for r in rows)
                    congress = at[90.0]["fmr"].get("congress_2015")
                    lines.append(
                        f"| {model} | {label} | {scorer} | {chain} | {cells} "
                        f"| {'-' if congress is None else f'{congress:.1e}'} "
                        f"| {100 * at[90.0]['lfw_fnmr']:.1f}% / {100 * at[99.0]['lfw_fnmr']:.1f}% |"
                    )
    return lines


def render_view2(doc: dict[str, Any]) -> list[str]:
    """LFW View 2 per model, calibration and scorer: each chain's and mixed pairs' accuracy."""
    lines = [
        "| model | files | scorer | LFW 10-fold: old / new / mixed "
        "| TAR @ FAR 1e-3: old / new / mixed |",
        "|---|---|---|---|---|",
    ]
    for model, by_label in doc["results"].items():
        for label, by_scorer in by_label.items():
            for scorer, entry in by_scorer.items():
                v = entry["view2"]
                acc = " / ".join(
                    f"{100 * v[c]['lfw_accuracy']:.2f}%" for c in ("old", "new", "mixed")
                )
                tar = " / ".join(f"{100 * v[c]['tar_view2']:.1f}%" for c in ("old", "new", "mixed"))
                lines.append(f"| {model} | {label} | {scorer} | {acc} | {tar} |")
    return lines


if __name__ == "__main__":
    main()
