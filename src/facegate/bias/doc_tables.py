"""The measured tables of ``docs/bias.md`` (and of other docs that quote a bias run), made
from the JSON reports of the commands that measure them, so the documents can be regenerated
and checked (``tools/bias_doc.py``).

A table sits in the document between two marker lines::

    <!-- bias-doc:NAME -->
    ...generated markdown...
    <!-- /bias-doc:NAME -->

:data:`TABLES` maps each ``NAME`` to a function of the stored reports (``{run name: JSON}``)
that returns the markdown. :func:`rewrite` replaces every region's body; :func:`drift` lists
the regions whose body differs from what the reports give (a hand edit, or a report re-run
without the document being regenerated).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Reports = Mapping[str, Mapping[str, Any]]

_REGION = re.compile(
    r"(<!-- bias-doc:(?P<name>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- /bias-doc:(?P=name) -->)",
    re.DOTALL,
)


def _pct(rate: float | None, digits: int = 2) -> str:
    return "-" if rate is None else f"{100 * rate:.{digits}f}%"


def _ci(ci: Any, digits: int = 2) -> str:
    return "-" if not ci else f"{100 * ci[0]:.{digits}f}-{100 * ci[1]:.{digits}f}"


def _num(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _count(n: int) -> str:
    return f"{n:,}"


_CACHE_USE = re.compile(r"; computed \d+, from cache \d+$")


def _descriptors(summary: str) -> str:
    """A descriptor summary without its cache use (which differs between a first run and a
    rerun of the same command: not a measurement)."""
    return _CACHE_USE.sub("", summary)


def _rate_cell(errors: int, total: int, rate: float | None, ci: Any, digits: int = 2) -> str:
    return f"{_pct(rate, digits)} ({_ci(ci, digits)}), {_count(errors)}/{_count(total)}"


def _disparity(t: Mapping[str, Any], kind: str) -> str:
    d = t[kind]
    ci = d["max_geomean_ci"]
    text = f"Max/GeoMean {_num(d['max_geomean'])}"
    text += "" if not ci else f" ({ci[0]:.2f}-{ci[1]:.2f})"
    if d["zero_groups"]:
        text += f", {len(d['zero_groups'])} zero group(s) left out"
    return text


def verification(reports: Reports, name: str = "lfw_gender") -> str:
    """FNMR and FMR per group at each threshold (a ``verification`` report)."""
    r = reports[name]
    lines = [
        "| Similarity | group | FNMR (95% CI), errors/pairs | FMR (95% CI), errors/pairs |",
        "|---|---|---|---|",
    ]
    for t in r["thresholds"]:
        for g in [*t["groups"], {**t["overall"], "group": "overall"}]:
            lines.append(
                f"| {t['similarity_pct']:g} | {g['group']} | "
                + _rate_cell(g["false_non_matches"], g["mated_pairs"], g["fnmr"], g["fnmr_ci"])
                + " | "
                + _rate_cell(g["false_matches"], g["nonmated_pairs"], g["fmr"], g["fmr_ci"], 3)
                + " |"
            )
    lines.append("")
    for t in r["thresholds"]:
        lines.append(
            f"At {t['similarity_pct']:g}: FNMR {_disparity(t, 'fnmr')}; FMR "
            f"{_disparity(t, 'fmr')}; FDR {_num(t['fdr'], 3)}."
        )
    lines.append("")
    lines.append(_pairs_line(r))
    return "\n".join(lines)


def _pairs_line(r: Mapping[str, Any]) -> str:
    s = r.get("sampling") or {}
    pairs = ", ".join(f"{k.replace('_', ' ')} {_count(v)}" for k, v in r["pairs"].items())
    mode = s.get("mode", "?")
    if s.get("per_group"):
        mode += f", {_count(s['per_group'])} per group and kind"
    return f"Pairs: {pairs} ({mode}). Descriptors: {_descriptors(r['descriptors'])}."


def impostors(reports: Reports, name: str = "ff_race_gender") -> str:
    """FMR per group, one column per threshold (an ``impostors`` report)."""
    r = reports[name]
    ts = r["thresholds"]
    head = " | ".join(f"FMR at {t['similarity_pct']:g} (95% CI), errors/pairs" for t in ts)
    lines = [f"| group | {head} |", "|---|" + "---|" * len(ts)]
    names = [g["group"] for g in ts[0]["groups"]]
    for i, group in enumerate([*names, "overall"]):
        cells = []
        for t in ts:
            g = t["overall"] if group == "overall" else t["groups"][i]
            cells.append(
                _rate_cell(g["false_matches"], g["nonmated_pairs"], g["fmr"], g["fmr_ci"], 3)
            )
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    lines.append("")
    for t in ts:
        lines.append(
            f"At {t['similarity_pct']:g}: FMR {_disparity(t, 'fmr')}, max/min ratio "
            f"{_num(t['fmr']['ratio'])} ({t['fmr']['max_group']} / {t['fmr']['min_group']})."
        )
    lines += ["", _pairs_line(r)]
    return "\n".join(lines)


def sampling(reports: Reports) -> str:
    """The same impostor audit with a fixed sample and with the default (``auto``) sampling."""
    lines = [
        "| pairs scored | sampling | Similarity | FMR Max/GeoMean (95% CI) | max/min |"
        " groups with no false match |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("ff_race_gender_3000", "ff_race_gender"):
        r = reports[name]
        for t in r["thresholds"]:
            ci = t["fmr"]["max_geomean_ci"]
            lines.append(
                f"| {_count(r['pairs']['within_group'])} | {r['sampling']['mode']} | "
                f"{t['similarity_pct']:g} | {_num(t['fmr']['max_geomean'])}"
                + ("" if not ci else f" ({ci[0]:.2f}-{ci[1]:.2f})")
                + f" | {_num(t['fmr']['ratio'])} | {len(t['fmr']['zero_groups'])} |"
            )
    return "\n".join(lines)


def detection(reports: Reports, name: str = "ff_race_gender") -> str:
    """Failure to detect per group (the report's ``failure_to_detect``)."""
    d = reports[name]["failure_to_detect"]
    lines = ["| group | images | no face (95% CI) | found by |", "|---|---|---|---|"]
    rows = [{**g, "group": name} for name, g in d["groups"].items()]
    for g in [*rows, {**d["overall"], "group": "all"}]:
        found = ", ".join(f"{k} {_count(v)}" for k, v in sorted(g["found_by"].items()))
        lines.append(
            f"| {g['group']} | {_count(g['images'])} | "
            f"{_pct(g['rate'], 1)} ({_ci(g['ci'], 1)}), {g['no_face']} | {found} |"
        )
    ratio = d.get("worst_best_ratio")
    lines += ["", f"Worst/best group ratio: {_num(ratio)}."]
    return "\n".join(lines)


def lineup(reports: Reports, name: str = "lineup_cf") -> str:
    """Probes with a false match per threshold and group, with the size-aware threshold."""
    r = reports[name]
    ts = r["thresholds"]
    groups = [g["group"] for g in ts[0]["groups"]]
    lines = [
        f"| Similarity | {r.get('unit', 'score')} | "
        + " | ".join(f"{g}: probes with a false match (95% CI)" for g in groups)
        + " | false candidates per search: promised / observed |",
        "|---|---|" + "---|" * (len(groups) + 1),
    ]
    for t in ts:
        label = f"{t['similarity_pct']:.4g}"
        if t.get("size_aware"):
            label += f" (size-aware, {t['size_aware']['max_expected_false_candidates']:g})"
        cells = [
            f"{g['with_false_match']}/{g['searched']}, {_pct(g['false_match_share'])} "
            f"({_ci(g['interval'])})"
            for g in t["groups"]
        ]
        promised = t.get("expected_false_candidates")
        observed = t.get("mean_false_candidates")
        lines.append(
            f"| {label} | {t['distance']:.4f} | "
            + " | ".join(cells)
            + f" | {_num(promised, 3)} / {_num(observed, 3)} |"
        )
    lines += [
        "",
        f"Probes: {_descriptors(r['probes']['descriptors'])}.",
        f"Gallery: {_descriptors(r['gallery']['descriptors'])}.",
    ]
    return "\n".join(lines)


def lineup_raw(reports: Reports) -> str:
    """The same lineup scored by the raw distance and its calibration (docs/calibration.md)."""
    return lineup(reports, "lineup_cf_raw")


def identification(reports: Reports, name: str = "lfw_1n") -> str:
    """NIST 1:N measures of a lineup with mates."""
    doc = reports[name]["identification"]
    k = doc["rank_k"]

    def cell(x: Mapping[str, Any]) -> str:
        if x["rate"] is None:
            return "-"
        return f"{_pct(x['rate'])} ({_ci(x['ci'])}), {_count(x['count'])}/{_count(x['searches'])}"

    fp = [e for e in doc["fnir_at_fpir"] if e["score"] is not None]
    head = ["group", "rank-1", f"rank-{k}"] + [
        f"FNIR at FPIR {e['fpir_target']:g} (Similarity {e['similarity_pct']:.4g})" for e in fp
    ]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for group, ranks in doc["ranks"].items():
        row = [group, cell(ranks["rank_1"]), cell(ranks[f"rank_{k}"])]
        row += [cell(e["groups"][group]["fnir"]) for e in fp]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "| Similarity | group | FPIR | FNIR | non-mate with mate | non-mate above mate |",
        "|---|---|---|---|---|---|",
    ]
    for t in doc["thresholds"]:
        for group, g in t["groups"].items():
            lines.append(
                f"| {t['similarity_pct']:.4g} | {group} | {cell(g['fpir'])} | {cell(g['fnir'])} | "
                f"{cell(g['nonmate_with_mate'])} | {cell(g['nonmate_above_mate'])} |"
            )
    boots = [
        f"FPIR {e['fpir_target']:g}: {_ci(e['fnir_bootstrap_ci'])}"
        for e in fp
        if e.get("fnir_bootstrap_ci")
    ]
    lines += [
        "",
        f"{_count(doc['mated_searches'])} mated and {_count(doc['nonmated_searches'])} non-mated "
        "searches. Overall FNIR bootstrap intervals (threshold re-set on each resample): "
        + "; ".join(boots)
        + ".",
    ]
    return "\n".join(lines)


def sweep(reports: Reports, name: str = "sweep_lfw") -> str:
    """The balance test's answer for each error rate."""
    r = reports[name]
    lines = []
    for kind, b in r["balance"].items():
        if b is None:
            lines.append(f"* {kind.upper()}: not tested (no group with {r['min_pairs']} pairs).")
            continue
        low, bad = b["lowest_balanced_similarity_pct"], b["first_imbalanced_similarity_pct"]
        text = f"* {kind.upper()}: lowest balanced Similarity " + (
            "none" if low is None else f"{low:g}"
        )
        if bad is not None:
            check = next(c for c in b["checks"] if c["similarity_pct"] == bad)
            pair = " vs ".join(check["worst_pair"] or [])
            text += f"; first imbalance at {bad:g} ({pair}, p = {check['min_p']:.2g})"
        lines.append(text + ".")
    lines.append("")
    lines.append(_pairs_line(r))
    return "\n".join(lines)


def normalisation(reports: Reports, name: str = "normalisation") -> str:
    """The raw-vs-normalised comparison's tables (:func:`facegate.bias.normalisation.render`)."""
    from facegate.bias.normalisation import render

    lines = [
        line.replace("## ", "**", 1) + "**" if line.startswith("## ") else line
        for line in render(reports[name])
    ]
    return "\n".join(lines)


def classifier(reports: Reports, name: str = "classifier_gender") -> str:
    """Error rate per group of a classifier audit (``bias classifier``): the intersectional
    groups, then each single attribute, with images where no face was found beside them."""
    r = reports[name]
    images = r.get("images") or {}
    total, no_face = images.get("per_group", {}), images.get("no_face", {})
    lines = [
        "| group | images | no face | classified | errors | error rate (95% CI) |",
        "|---|---|---|---|---|---|",
    ]
    tables = [r["intersectional"], *r["marginals"]]
    for i, table in enumerate(tables):
        rows = list(table["groups"]) + ([table["overall"]] if i == 0 else [])
        for g in rows:
            rate = _pct(g["error_rate"], 1)
            ci = _ci((g["ci_low"], g["ci_high"]) if g["ci_low"] is not None else None, 1)
            small = " *" if g.get("too_small") else ""
            seen = _count(total[g["group"]]) if g["group"] in total else "-"
            lines.append(
                f"| {g['group']}{small} | {seen} | {no_face.get(g['group'], '-')} | "
                f"{_count(g['n'])} | {_count(g['errors'])} | {rate} ({ci}) |"
            )
    lines.append("")
    for table in tables:
        s = table["summary"]
        worst = " and ".join(s["worst"])
        best = " and ".join(s["best"])
        fisher = s.get("fisher") or {}
        p = fisher.get("p_value")
        lines.append(
            f"By {' x '.join(table['attributes'])}: worst {worst} {_pct(s['max_error_rate'], 1)}, "
            f"best {best} {_pct(s['min_error_rate'], 1)}; max/min {_num(s['ratio'])}, "
            f"Max/GeoMean {_num(s['max_geomean'])}"
            + ("" if p is None else f", Fisher exact p = {p:.2g}")
            + "."
        )
    est = r.get("estimator") or {}
    lines += ["", f"Estimator: {est.get('version', '?')} ({r['error_definition']})."]
    return "\n".join(lines)


def normalisation_targets(reports: Reports, name: str = "normalisation") -> str:
    """docs/normalisation.md's acceptance targets, judged on the comparison's report: the worst
    group's FMR at equal FNMR at least 10x lower, FMR Max/GeoMean at most 3, LFW accuracy
    within 0.3 points, and at most 1% of lineup probes with a false candidate at the
    size-aware threshold."""
    r = reports[name]
    raw, norm = r["scorers"]["raw"], r["scorers"]["normalised"]

    def worst(s: Mapping[str, Any]) -> tuple[str, float]:
        e = s["equal_fnmr"]
        return e["worst_group"], e["groups"][e["worst_group"]]["rate"]

    (wr, fr), (wn, fn) = worst(raw), worst(norm)
    factor = fr / fn if fn else float("inf")
    gm_raw, gm_norm = raw["equal_fnmr"]["max_geomean"], norm["equal_fnmr"]["max_geomean"]
    acc_raw, acc_norm = raw["lfw_accuracy"]["mean"], norm["lfw_accuracy"]["mean"]
    points = 100 * (acc_norm - acc_raw)

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    groups = len(norm["equal_fnmr"]["groups"])
    faces = _count(r["held_out_faces"])
    lines = [
        "| measure | raw distance | normalised score | target |",
        "|---|---|---|---|",
        f"| threshold at {r['data']['mated']} FNMR {r['fnmr_target']:.0%} | "
        f"{raw['equal_fnmr']['threshold_score']:.4f} | "
        f"{norm['equal_fnmr']['threshold_score']:.4f} | - |",
        f"| worst group's FMR ({r['grouping']}, {r['data']['impostors']}, {faces} faces) | "
        f"{wr} {_pct(fr)} | {wn} {_pct(fn)} | at least 10x lower: {factor:.1f}x, "
        f"{met(factor >= 10)} |",
        f"| FMR Max/GeoMean ({groups} groups) | {_num(gm_raw)} | {_num(gm_norm)} | at most 3: "
        f"{met(gm_norm is not None and gm_norm <= 3)} |",
        f"| {r['data']['mated']} 10-fold accuracy | {_pct(acc_raw)} | {_pct(acc_norm)} | "
        f"within 0.3 points: {points:+.2f}, {met(points >= -0.3)} |",
    ]
    for i, row in enumerate(raw["lineup"]["rows"]):
        cells = []
        for s in (raw, norm):
            x = s["lineup"]["rows"][i]
            hit = x["probes_with_false_candidate"]
            sim = "-" if x["similarity_pct"] is None else f"{x['similarity_pct']:.4g}"
            cells.append(
                f"S {sim}: {hit['errors']}/{hit['total']} ({_pct(hit['rate'])}); "
                f"LFW FNMR {_pct(x['lfw_fnmr'], 1)}"
            )
        size_aware = str(row["threshold"]).startswith("size-aware")
        share = norm["lineup"]["rows"][i]["probes_with_false_candidate"]["rate"]
        target = f"at most 1% of probes: {met(share <= 0.01)}" if size_aware else "-"
        lines.append(
            f"| lineup at {row['threshold']}: probes with a false candidate | "
            + " | ".join(cells)
            + f" | {target} |"
        )
    lineup = norm["lineup"]
    lines += [
        "",
        f"Lineup: {lineup['probes']} {r['data']['probes']} probes against "
        f"{_count(lineup['gallery'])} {r['data']['impostors']} faces (nobody in common).",
    ]
    return "\n".join(lines)


TABLES: dict[str, Callable[[Reports], str]] = {
    "verification": verification,
    "impostors": impostors,
    "sampling": sampling,
    "detection": detection,
    "lineup": lineup,
    "identification": identification,
    "sweep": sweep,
    "normalisation": normalisation,
    "classifier": classifier,
    "lineup_raw": lineup_raw,
    "normalisation_targets": normalisation_targets,
}


def regions(doc: str) -> dict[str, str]:
    """The generated regions of a document: name -> body (without the marker lines)."""
    return {m["name"]: m["body"] for m in _REGION.finditer(doc)}


def rewrite(doc: str, reports: Reports) -> str:
    """``doc`` with every known region's body made from ``reports``."""

    def body(m: re.Match[str]) -> str:
        maker = TABLES.get(m["name"])
        if maker is None:
            return m.group(0)
        return m.group(1) + maker(reports).rstrip("\n") + "\n" + m.group(4)

    return _REGION.sub(body, doc)


def drift(doc: str, reports: Reports, expected: Iterable[str] = ()) -> list[str]:
    """Names of the regions whose body is not what ``reports`` give, of regions no table
    makes, and of the ``expected`` tables the document lacks (empty: the document matches its
    reports)."""
    found = regions(doc)
    out = [name for name in expected if name not in found]
    for name, text in found.items():
        maker = TABLES.get(name)
        if maker is None or text != maker(reports).rstrip("\n") + "\n":
            out.append(name)
    return out
