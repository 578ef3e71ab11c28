"""How every ``facegate bias`` action is told which faces to measure: one way for all of them.

A data set is named by one value, ``NAME|FILE.csv``:

* a built-in data set, ``lfw``, ``fairface`` or ``congress``, read from its folder under
  ``--data-root DIR`` (default ``../shared/data``: ``lfw/``, ``fairface_val/``,
  ``congress_2015/``);
* or the path of a manifest CSV (:func:`facegate.bias.datasets.load_csv`: a header
  ``path,subject_id,<attributes>``, paths relative to the CSV). A value ending in ``.csv``, or
  naming an existing file, is a manifest.

The flag is ``--dataset`` for actions that measure one data set (``verification``,
``impostors``, ``sweep``, ``classifier --estimate``), ``--probes`` and ``--gallery`` for
``lineup``, and ``--mated``, ``--impostors``, ``--probes`` for ``normalisation``.

Older spellings still work and print one ``deprecated`` line on stderr: ``--dataset csv`` with
``--data FILE`` or ``--manifest FILE``, ``--probes csv --probes-csv FILE`` (and the gallery's),
``--data DIR`` / ``--probes-data DIR`` for a built-in set's folder. The effective command line a
report records is always the current spelling (a deprecated folder override is kept as given).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from facegate.bias.datasets import (
    DatasetError,
    Manifest,
    Pair,
    load_congress,
    load_csv,
    load_fairface,
    load_lfw,
)

DATA_ROOT = Path("../shared/data")
BUILTIN = {"lfw": "lfw", "fairface": "fairface_val", "congress": "congress_2015"}
"""Built-in data set name -> its folder under ``--data-root``."""
LEGACY_CSV = "csv"
"""The old ``--dataset csv`` (the file then came from ``--data`` or ``--manifest``)."""
METAVAR = "NAME|FILE.csv"


def dataset_spec(text: str) -> str:
    """The ``argparse`` type of a data set value: a built-in name or a manifest CSV path.

    Anything else (a typo such as ``imagenet``) is a usage error, reported with the action's
    usage line.
    """
    if text in BUILTIN or text == LEGACY_CSV:
        return text
    if text.lower().endswith(".csv") or Path(text).is_file():
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is neither a built-in data set ({', '.join(BUILTIN)}) nor a manifest CSV"
    )


def add_dataset(
    parser: argparse.ArgumentParser,
    flag: str,
    default: str,
    what: str,
    builtins: tuple[str, ...] = tuple(BUILTIN),
) -> None:
    """Add ``flag NAME|FILE.csv`` (``what``: one phrase saying what the data set is for)."""
    parser.add_argument(
        flag,
        type=dataset_spec,
        default=default,
        metavar=METAVAR,
        help=f"{what}: a built-in data set ({', '.join(builtins)}) or a manifest CSV "
        f"(path,subject_id,<attributes>) (default: {default})",
    )


def add_data_root(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-root DIR``: where the built-in data sets' folders are."""
    parser.add_argument(
        "--data-root",
        type=Path,
        default=DATA_ROOT,
        metavar="DIR",
        help=f"folder holding the built-in data sets (default: {DATA_ROOT})",
    )


def add_hidden(parser: argparse.ArgumentParser, flag: str, dest: str | None = None) -> None:
    """A deprecated path flag: parsed, left out of ``--help``."""
    name = dest or flag.lstrip("-").replace("-", "_")
    parser.add_argument(flag, dest=name, type=Path, default=None, help=argparse.SUPPRESS)


def deprecated(flag: str, instead: str) -> None:
    """One line on stderr for a deprecated spelling (the run goes on)."""
    print(f"facegate: {flag} is deprecated; {instead}", file=sys.stderr)


@dataclass(frozen=True)
class DataSource:
    """A resolved data set: ``name`` is a built-in name or ``csv``; ``path`` its folder or file."""

    name: str
    path: Path

    @property
    def is_csv(self) -> bool:
        """True for an operator's manifest CSV."""
        return self.name == LEGACY_CSV

    def manifest(self) -> Manifest:
        """The images (for ``lfw``: every image of View 2's pairs)."""
        if self.is_csv:
            return load_csv(self.path)
        if self.name == "lfw":
            return load_lfw(self.path)[0]
        return load_fairface(self.path) if self.name == "fairface" else load_congress(self.path)

    def with_protocol(self) -> tuple[Manifest, list[Pair]]:
        """The images and the data set's own pairs (LFW View 2's 6,000; none for others)."""
        if self.name == "lfw":
            return load_lfw(self.path)
        return self.manifest(), []


def resolve(
    spec: str,
    root: Path,
    *,
    flag: str,
    folder: Path | None = None,
    csv: Path | None = None,
    builtins: tuple[str, ...] = tuple(BUILTIN),
) -> DataSource:
    """The data set of ``flag``'s value ``spec``.

    ``folder``: a deprecated per-set folder override; ``csv``: a CSV given by a deprecated flag
    (it wins over ``spec``). Raises :class:`DatasetError` (exit 3) for a built-in set this action
    cannot use, a missing folder or file, or ``csv`` without its file.
    """
    if csv is not None:
        path = csv
    elif spec == LEGACY_CSV:
        raise DatasetError(f"{flag} csv needs the manifest: pass it as {flag} FILE.csv")
    elif spec in BUILTIN:
        if spec not in builtins:
            raise DatasetError(
                f"{flag} {spec}: this action needs {' or '.join(builtins)} or a manifest CSV"
            )
        path = folder if folder is not None else root / BUILTIN[spec]
        if not path.is_dir():
            raise DatasetError(f"data folder not found: {path} (pass --data-root DIR)")
        return DataSource(spec, path)
    else:
        path = Path(spec)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    return DataSource(LEGACY_CSV, path)


def resolve_single(
    args: argparse.Namespace, builtins: tuple[str, ...] = tuple(BUILTIN)
) -> DataSource:
    """``--dataset`` of an action, with its deprecated ``--data`` / ``--manifest`` folded in.

    Rewrites ``args`` to the current spelling (``args.dataset`` becomes the CSV's path), so the
    recorded command line reproduces the run.
    """
    data: Path | None = getattr(args, "data", None)
    manifest: Path | None = getattr(args, "manifest", None)
    csv = folder = None
    if manifest is not None:
        deprecated("--manifest FILE", "pass the CSV as --dataset FILE.csv")
        csv = manifest
    elif data is not None and (args.dataset == LEGACY_CSV or data.suffix.lower() == ".csv"):
        deprecated("--dataset csv --data FILE", "pass the CSV as --dataset FILE.csv")
        csv = data
    elif data is not None:
        deprecated("--data DIR", "pass --data-root with the folder holding the data sets")
        folder = data
    source = resolve(
        args.dataset, args.data_root, flag="--dataset", folder=folder, csv=csv, builtins=builtins
    )
    if source.is_csv:
        args.dataset = str(source.path)
        args.data = None
        if hasattr(args, "manifest"):
            args.manifest = None
    return source


def resolve_side(args: argparse.Namespace, side: str) -> DataSource:
    """``--probes`` or ``--gallery`` (``side``) of ``lineup``, deprecated flags folded in."""
    csv: Path | None = getattr(args, f"{side}_csv", None)
    folder: Path | None = getattr(args, f"{side}_data", None)
    if csv is not None:
        deprecated(f"--{side}-csv FILE", f"pass the CSV as --{side} FILE.csv")
    if folder is not None:
        deprecated(f"--{side}-data DIR", "pass --data-root with the folder holding the data sets")
    spec: str = getattr(args, side)
    source = resolve(spec, args.data_root, flag=f"--{side}", folder=folder, csv=csv)
    if source.is_csv:
        setattr(args, side, str(source.path))
        setattr(args, f"{side}_csv", None)
    return source
