"""``facegate demo``: the engine over a folder of sample images, explained in plain text.

Prints, per image, the faces found (count, largest box, confidence, pose, quality) and then
which images show the same person: every pair of images whose largest faces reach the default
Rekognition threshold (Similarity 80), with the distance and similarity, so a reader can check
the engine against the samples' MANIFEST.md (the three obama photos match; biden does not).
"""

from __future__ import annotations

import time
from itertools import combinations
from pathlib import Path
from typing import TextIO

from facegate.cli.render import progress
from facegate.engine.core import EngineConfig
from facegate.engine.pool import EnginePool
from facegate.engine.types import Analysis, Vector
from facegate.operations import default_threshold

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MATCH_THRESHOLD_PCT = default_threshold("CompareFaces")


def sample_images(folder: Path) -> list[Path]:
    """JPEG and PNG files under ``folder``, sorted, recursively."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def run_demo(folder: Path, config: EngineConfig, *, workers: int, out: TextIO) -> int:
    """Analyse every image in ``folder`` and print faces and matches. Returns an exit code."""
    paths = sample_images(folder)
    if not paths:
        out.write(f"No JPEG or PNG images under {folder}.\n")
        return 3
    out.write(f"facegate demo: {len(paths)} images from {folder}, {workers} engine worker(s)\n")
    started = time.perf_counter()
    largest: dict[str, Vector] = {}
    total_faces = 0
    errors = 0
    with EnginePool(config, workers=workers) as pool:
        outcomes = pool.map_analyze(p.read_bytes() for p in paths)
        rows = []
        for path, outcome in progress(zip(paths, outcomes, strict=True), len(paths), "demo"):
            name = str(path.relative_to(folder))
            if isinstance(outcome, Exception):
                errors += 1
                rows.append(f"  {name:<34} error: {outcome}")
                continue
            total_faces += len(outcome.faces)
            rows.append(_row(name, outcome))
            if outcome.faces and outcome.faces[0].descriptor is not None:
                largest[name] = outcome.faces[0].descriptor
    elapsed = time.perf_counter() - started
    out.write(f"  {'image':<34} {'size':>10} faces  largest face (px)   conf%  yaw  sharp\n")
    out.write("\n".join(rows) + "\n")
    out.write(
        f"{total_faces} faces in {len(paths)} images in {elapsed:.1f} s ({errors} unreadable)\n\n"
    )
    _print_matches(largest, config, out)
    return 0


def _row(name: str, analysis: Analysis) -> str:
    size = f"{analysis.width_px}x{analysis.height_px}"
    if not analysis.faces:
        return f"  {name:<34} {size:>10} {0:5d}  -"
    d = analysis.faces[0].detected
    box = f"{d.box_px.width}x{d.box_px.height} at {d.box_px.left},{d.box_px.top}"
    return (
        f"  {name:<34} {size:>10} {len(analysis.faces):5d}  {box:<18} {d.confidence_pct:6.1f} "
        f"{d.pose.yaw_deg:4.0f} {d.quality.sharpness_pct:6.1f}"
    )


def _print_matches(largest: dict[str, Vector], config: EngineConfig, out: TextIO) -> None:
    """Group images whose largest faces match (single-linkage at the threshold) and print them."""
    matcher = config.matcher
    names = sorted(largest)
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    pair_pct = {(a, b): matcher.compare(largest[a], largest[b]) for a, b in combinations(names, 2)}
    for (a, b), pct in pair_pct.items():
        if pct >= MATCH_THRESHOLD_PCT:
            parent[root(b)] = root(a)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    out.write(
        f"Same person? Images grouped when their largest faces reach similarity "
        f">= {MATCH_THRESHOLD_PCT:g} (model {matcher.version}):\n"
    )
    alone = []
    for members in sorted(groups.values(), key=lambda m: (-len(m), m[0])):
        if len(members) == 1:
            alone.append(members[0])
            continue
        lowest = min(pair_pct[pair] for pair in combinations(members, 2))
        out.write(f"  {len(members)} images, lowest similarity between two of them {lowest:.2f}:\n")
        out.write("".join(f"      {m}\n" for m in members))
    if alone:
        out.write(f"  matching no other image: {', '.join(alone)}\n")
