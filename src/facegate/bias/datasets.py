"""Dataset manifests for audits: which images, whose faces, which demographic groups.

A :class:`Manifest` is an ordered tuple of :class:`Sample`: an image path, the subject's id (when
known; ``None`` means "a subject of its own", as in FairFace), group attributes such as ``gender``,
``race`` and ``age_band``, and a provenance string naming the data set and its label sources. Pairs
(:class:`Pair`) refer to samples by their index in ``Manifest.samples``.

Attribute values are strings; a missing or ambiguous label is the value :data:`UNKNOWN`, kept as a
group of its own so it is reported, never silently dropped. ``gender`` is normalised to ``female``
/ ``male`` / ``unknown`` in every loader; race labels keep each data set's own taxonomy (LFW's
USC-SAIL labels and FairFace's seven groups are not the same categories and must not be merged).

Loaders (each validates that every referenced image exists and raises :class:`DatasetError`
naming the file and line otherwise):

* :func:`load_lfw` - LFW View 2 (``pairs.txt``), with its 6,000 pairs and their folds;
* :func:`load_lfw_images` - every LFW image of ``gender.csv``, or of a per-image label file
  (e.g. smile labels), with gender and race;
* :func:`load_fairface` - the FairFace validation split (no identities);
* :func:`load_congress` - the Congress portraits (bioguide id as subject);
* :func:`load_csv` - an operator's own data in the documented CSV format (see its docstring).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

UNKNOWN = "unknown"
"""The attribute value for a missing or ambiguous label (a group of its own)."""

LFW_PROVENANCE = (
    "LFW View 2 (Huang et al., UMass 2007); gender: LFW site lists (gender.csv); "
    "race: usc-sail/mica-race-from-face (race_by_identity.json)"
)
FAIRFACE_PROVENANCE = "FairFace validation split (Karkkainen & Joo, WACV 2021; CC BY 4.0)"
CONGRESS_PROVENANCE = (
    "US Congress portraits, 114th Congress era (unitedstates/images; public domain)"
)

_GENDER_WORDS = {"m": "male", "male": "male", "f": "female", "female": "female"}


class DatasetError(ValueError):
    """A data set's files are missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class Pair:
    """Two samples of one manifest, by index into ``Manifest.samples``.

    ``mated`` is true when both show the same subject. ``fold`` is the protocol's fold (LFW View
    2: 0-9), ``None`` for pairs outside a fold protocol (e.g. generated impostor pairs).
    """

    left: int
    right: int
    mated: bool
    fold: int | None = None


@dataclass(frozen=True)
class LfwPair:
    """One line of an LFW pairs file; ``left``/``right`` are paths relative to ``images/``."""

    fold: int
    left: str
    right: str
    mated: bool


def lfw_image_name(person: str, number: str) -> str:
    """``images/``-relative path of LFW image ``number`` of ``person``."""
    return f"{person}/{person}_{int(number):04d}.jpg"


def parse_lfw_pairs(text: str, source: str = "pairs.txt") -> list[LfwPair]:
    """Parse an LFW pairs file: a line "folds per_fold" (or just "per_fold", as in
    ``pairsDevTest.txt``, meaning one fold), then per fold ``per_fold`` mated lines
    ("name n1 n2") followed by ``per_fold`` non-mated lines ("name1 n1 name2 n2").

    Raises :class:`DatasetError` (a ``ValueError``) naming ``source`` and the line.
    """
    lines = [(i, line.split()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise DatasetError(f"{source}: empty pairs file")
    try:
        head = [int(x) for x in lines[0][1]]
    except ValueError as exc:
        raise DatasetError(f"{source} line {lines[0][0]}: bad header {lines[0][1]}") from exc
    folds, per_fold = (head[0], head[1]) if len(head) == 2 else (1, head[0])
    if len(lines) != 1 + 2 * folds * per_fold:
        raise DatasetError(f"{source}: expected {2 * folds * per_fold} pairs, got {len(lines) - 1}")
    pairs = []
    for row, (line, parts) in enumerate(lines[1:]):
        fold, mated = row // (2 * per_fold), (row % (2 * per_fold)) < per_fold
        if len(parts) != (3 if mated else 4):
            kind = "mated" if mated else "non-mated"
            raise DatasetError(f"{source} line {line}: unexpected fields for a {kind} pair {parts}")
        try:
            if mated:
                left, right = lfw_image_name(parts[0], parts[1]), lfw_image_name(parts[0], parts[2])
            else:
                left, right = lfw_image_name(parts[0], parts[1]), lfw_image_name(parts[2], parts[3])
        except ValueError as exc:
            raise DatasetError(f"{source} line {line}: bad image number in {parts}") from exc
        pairs.append(LfwPair(fold, left, right, mated))
    return pairs


@dataclass(frozen=True)
class Sample:
    """One image in a manifest.

    ``subject_id`` is ``None`` when the data set has no identities: such a sample is presumed to
    be a different person from every other sample. ``attributes`` maps attribute names (``gender``,
    ``race``, ``age_band`` ...) to values, :data:`UNKNOWN` for a missing label.
    """

    path: Path
    subject_id: str | None
    attributes: Mapping[str, str] = field(hash=False)
    provenance: str


@dataclass(frozen=True)
class Manifest:
    """An ordered collection of samples; pairs and descriptor rows use the samples' indices."""

    name: str
    samples: tuple[Sample, ...]

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def index_of(self, path: Path) -> int:
        """The index of the sample with this path (``KeyError`` when absent)."""
        for i, sample in enumerate(self.samples):
            if sample.path == path:
                return i
        raise KeyError(str(path))

    def attribute_counts(self, name: str) -> Counter[str]:
        """How many samples carry each value of attribute ``name`` (absent -> ``unknown``)."""
        return Counter(s.attributes.get(name, UNKNOWN) for s in self.samples)


def _attributes(values: Mapping[str, str]) -> Mapping[str, str]:
    """A read-only attribute mapping with empty values replaced by ``unknown``."""
    return MappingProxyType({k: (v.strip() or UNKNOWN) for k, v in values.items()})


def normalise_gender(value: str) -> str:
    """``M``/``Male`` -> ``male``, ``F``/``Female`` -> ``female``, anything else -> ``unknown``.

    Anything else includes LFW's ``M/F?`` (an image on both of the LFW site's lists) and an empty
    cell: an ambiguous label is not guessed.
    """
    return _GENDER_WORDS.get(value.strip().lower(), UNKNOWN)


def _read_csv(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV file with a header, each with its 1-based line number; checks the header."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        missing = [c for c in required if c not in header]
        if missing:
            raise DatasetError(f"{path} line 1: missing column(s) {', '.join(missing)}")
        rows = []
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise DatasetError(
                    f"{path} line {reader.line_num}: expected {len(header)} fields "
                    f"({', '.join(header)})"
                )
            rows.append((reader.line_num, row))
    return rows


def _require_image(path: Path, where: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{where}: image not found: {path}")
    return path


# --- LFW ---------------------------------------------------------------------------------------


def load_lfw_gender(path: Path) -> dict[str, str]:
    """``gender.csv``: image path (relative to ``images/``) -> female / male / unknown."""
    return {
        row["image"]: normalise_gender(row["gender"])
        for _, row in _read_csv(path, ("image", "gender"))
    }


def lfw_race(labels: str | None) -> str:
    """One race value from a USC-SAIL label: the label itself, ``multiple`` when the annotators
    gave several (e.g. ``african,caucasian``), ``unknown`` when the identity has none."""
    if not labels:
        return UNKNOWN
    parts = [p.strip() for p in labels.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else "multiple"


def load_lfw(root: Path, pairs_file: str = "pairs.txt") -> tuple[Manifest, list[Pair]]:
    """LFW View 2: one sample per distinct image in ``pairs_file``, and its pairs with folds.

    Attributes: ``gender`` (``gender.csv``; the images listed as ``M/F?`` and any image absent
    from the file are ``unknown``), ``race`` (:func:`lfw_race` of ``race_by_identity.json``;
    identities without a label are ``unknown``) and ``race_labels`` (the USC-SAIL label as given).
    Subject id: the LFW name. Pairs keep ``pairs.txt``'s order and fold (0-9).
    """
    root = Path(root)
    text_path = root / pairs_file
    if not text_path.is_file():
        raise DatasetError(f"{text_path}: file not found")
    lfw_pairs = parse_lfw_pairs(text_path.read_text(encoding="utf-8"), source=str(text_path))
    gender = load_lfw_gender(root / "gender.csv")
    race_path = root / "race_by_identity.json"
    if not race_path.is_file():
        raise DatasetError(f"{race_path}: file not found")
    races: dict[str, str] = json.loads(race_path.read_text(encoding="utf-8"))
    index: dict[str, int] = {}
    samples: list[Sample] = []

    def sample_index(name: str) -> int:
        if name not in index:
            subject = name.split("/", 1)[0]
            path = _require_image(root / "images" / name, str(text_path))
            attrs = {
                "gender": gender.get(name, UNKNOWN),
                "race": lfw_race(races.get(subject)),
                "race_labels": races.get(subject, UNKNOWN),
            }
            index[name] = len(samples)
            samples.append(Sample(path, subject, _attributes(attrs), LFW_PROVENANCE))
        return index[name]

    pairs = [Pair(sample_index(p.left), sample_index(p.right), p.mated, p.fold) for p in lfw_pairs]
    return Manifest("lfw", tuple(samples)), pairs


def _lfw_label_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """A per-image label CSV of LFW: lines starting ``#`` are comments; ``image`` is required."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        numbered = [(n, line) for n, line in enumerate(fh, 1) if not line.startswith("#")]
    reader = csv.DictReader(line for _, line in numbered)
    header = list(reader.fieldnames or [])
    if "image" not in header:
        raise DatasetError(f"{path}: missing column image (header: {','.join(header)})")
    rows = []
    for i, row in enumerate(reader, 1):
        if None in row or any(v is None for v in row.values()):
            raise DatasetError(f"{path} line {numbered[i][0]}: expected {len(header)} fields")
        rows.append((numbered[i][0], row))
    return rows


def load_lfw_images(root: Path, labels: Path | None = None) -> Manifest:
    """LFW images one by one (not pairs), for attribute audits.

    Without ``labels``: every image listed in ``gender.csv`` (8,117). With ``labels``: every
    image of that CSV (a column ``image``, relative to ``images/``, a leading ``images/``
    allowed; lines starting ``#`` are comments), each of its other columns an attribute (e.g.
    ``smile``: ``1``/``0``; empty: unknown); labelled images absent from ``images/`` are left
    out, and the provenance says how many. Every sample also has ``gender`` (``gender.csv``)
    and ``race`` (USC-SAIL), as :func:`load_lfw` gives them; subject id: the LFW name.
    """
    root = Path(root)
    gender = load_lfw_gender(root / "gender.csv")
    race_path = root / "race_by_identity.json"
    if not race_path.is_file():
        raise DatasetError(f"{race_path}: file not found")
    races: dict[str, str] = json.loads(race_path.read_text(encoding="utf-8"))
    if labels is None:
        source = root / "gender.csv"
        rows = [(line, {"image": r["image"]}) for line, r in _read_csv(source, ("image",))]
        provenance = LFW_PROVENANCE.replace("LFW View 2", "LFW images of gender.csv")
    else:
        source = Path(labels)
        rows = _lfw_label_rows(source)
        provenance = f"LFW images labelled in {source.name}; {LFW_PROVENANCE}"
    samples = []
    seen: set[str] = set()
    absent = 0
    for line, row in rows:
        name = row["image"].strip().removeprefix("images/")
        if name in seen:
            raise DatasetError(f"{source} line {line}: image listed twice: {name}")
        seen.add(name)
        if labels is not None and not (root / "images" / name).is_file():
            absent += 1  # a label file may cover more of LFW than this copy holds
            continue
        path = _require_image(root / "images" / name, f"{source} line {line}")
        subject = name.split("/", 1)[0]
        attrs = {k: v for k, v in row.items() if k != "image"}
        attrs.update(gender=gender.get(name, UNKNOWN), race=lfw_race(races.get(subject)))
        samples.append(Sample(path, subject, _attributes(attrs), provenance))
    if absent:
        note = f" ({absent} labelled images not in {root / 'images'}, left out)"
        samples = [replace(s, provenance=s.provenance + note) for s in samples]
    return Manifest("lfw_images" if labels is None else f"lfw:{source.stem}", tuple(samples))


def one_per_subject(manifest: Manifest) -> Manifest:
    """The first sample of each subject (in manifest order); samples without a subject id are
    all kept. For audits whose intervals assume independent rows: many images of one person
    are not independent evidence."""
    seen: set[str] = set()
    kept = []
    for sample in manifest.samples:
        if sample.subject_id is not None:
            if sample.subject_id in seen:
                continue
            seen.add(sample.subject_id)
        kept.append(sample)
    return Manifest(f"{manifest.name} (one image per subject)", tuple(kept))


# --- FairFace and Congress ---------------------------------------------------------------------


def load_fairface(root: Path) -> Manifest:
    """FairFace validation: ``labels.csv`` (image, age, gender, race, race4) -> 5,000 samples.

    Attributes: ``gender``, ``race`` (7 groups: Black, East Asian, Indian, Latino_Hispanic,
    Middle Eastern, Southeast Asian, White), ``race4`` (Asian, Black, Indian, White and Other)
    and ``age_band`` (FairFace's age bins). No identities: ``subject_id`` is ``None`` (every
    image is its own subject).
    """
    root = Path(root)
    labels = root / "labels.csv"
    samples = []
    for line, row in _read_csv(labels, ("image", "age", "gender", "race", "race4")):
        path = _require_image(root / "images" / row["image"], f"{labels} line {line}")
        attrs = {
            "gender": normalise_gender(row["gender"]),
            "race": row["race"],
            "race4": row["race4"],
            "age_band": row["age"],
        }
        samples.append(Sample(path, None, _attributes(attrs), FAIRFACE_PROVENANCE))
    return Manifest("fairface_val", tuple(samples))


def load_congress(root: Path) -> Manifest:
    """Congress portraits: ``labels.csv`` (image, bioguide, gender) -> 879 samples.

    Subject id: the bioguide id. ``gender`` is known only for members still serving in 2026
    (``unknown`` otherwise).
    """
    root = Path(root)
    labels = root / "labels.csv"
    samples = []
    for line, row in _read_csv(labels, ("image", "bioguide", "gender")):
        path = _require_image(root / "images" / row["image"], f"{labels} line {line}")
        attrs = {"gender": normalise_gender(row["gender"])}
        samples.append(Sample(path, row["bioguide"], _attributes(attrs), CONGRESS_PROVENANCE))
    return Manifest("congress_2015", tuple(samples))


# --- operator CSV ------------------------------------------------------------------------------


def load_csv(path: Path, name: str | None = None) -> Manifest:
    """An operator's own data set, described by one CSV file (UTF-8, comma-separated).

    Format::

        path,subject_id,gender,age_band,skin_type
        people/0001.jpg,p17,female,30-39,V
        people/0002.jpg,p17,female,30-39,V
        people/0003.jpg,,male,,III

    * The header is required. The first two columns are ``path`` and ``subject_id``, in that
      order; every further column is a group attribute, named by its header (names must be
      non-empty and distinct). There may be no attribute columns at all.
    * ``path`` is relative to the CSV file's folder (an absolute path is allowed); the file must
      exist; each path may appear once.
    * ``subject_id`` may be empty: that image is then presumed to show a person of its own (no
      mated pairs are formed with it). Images sharing a ``subject_id`` show the same person.
    * An empty attribute cell means ``unknown``. In a ``gender`` column ``M``/``Male`` and
      ``F``/``Female`` (any case) become ``male``/``female`` as in the built-in loaders; other
      values are kept as written.

    Raises :class:`DatasetError` naming the file and line of the first problem.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DatasetError(f"{path} line 1: empty file; expected a header 'path,subject_id,...'")
    header = [cell.strip() for cell in rows[0]]
    if header[:2] != ["path", "subject_id"]:
        raise DatasetError(
            f"{path} line 1: the header must start with 'path,subject_id', got {','.join(header)}"
        )
    attr_names = header[2:]
    blank = [i + 3 for i, n in enumerate(attr_names) if not n]
    if blank:
        raise DatasetError(f"{path} line 1: attribute column {blank[0]} has no name")
    duplicates = sorted(n for n, c in Counter(header).items() if c > 1)
    if duplicates:
        raise DatasetError(f"{path} line 1: duplicate column(s) {', '.join(duplicates)}")
    seen: dict[Path, int] = {}
    samples = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines are allowed (e.g. a trailing newline)
        if len(row) != len(header):
            raise DatasetError(f"{path} line {line}: expected {len(header)} fields, got {len(row)}")
        rel, subject = row[0].strip(), row[1].strip()
        if not rel:
            raise DatasetError(f"{path} line {line}: empty path")
        image = (path.parent / rel).resolve()
        if image in seen:
            raise DatasetError(f"{path} line {line}: {rel} already listed on line {seen[image]}")
        seen[image] = line
        _require_image(image, f"{path} line {line}")
        attrs = dict(zip(attr_names, row[2:], strict=True))
        if "gender" in attrs:
            value = attrs["gender"].strip()
            attrs["gender"] = _GENDER_WORDS.get(value.lower(), value)
        samples.append(
            Sample(image, subject or None, _attributes(attrs), f"{path.name} line {line}")
        )
    return Manifest(name or path.stem, tuple(samples))
