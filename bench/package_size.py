"""Package size: zipped size of each function and of the shared layer, without boto3.

The artifacts come from `make build` (sam build for arm64), run into a folder of the benchmark's
own so that it leaves .aws-sam/build alone. When that build fails, for instance without a
Python 3.12 or the SAM CLI, the layer is built here with `pip install --target` for CPython 3.12
on manylinux2014_aarch64 from the layer's requirements.txt, and each function folder is zipped as
it is. boto3, botocore and s3transfer come with the Lambda runtime, so they are removed.

The pin of opensearch-py to 2.8 is measured by building the layer twice with pip, once as
requirements.txt has it and once with opensearch-py 3.x, and comparing the zipped sizes.
Megabytes here are 10**6 bytes.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from bench.measure import progress
from bench.stack import REPO

CACHE_DIR = REPO / ".cache" / "bench"
LAYER_REQUIREMENTS = REPO / "layers" / "ti_anomali" / "requirements.txt"
LAYER_SOURCE = REPO / "layers" / "ti_anomali" / "ti_anomali"
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
LAYER_ARTIFACT = "SharedLayer"
OPENSEARCH_PY_3 = "opensearch-py>=3,<4"
PIP_TARGET_FLAGS = (
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
    "--abi",
    "cp312",
    "--only-binary=:all:",
    "--no-compile",
)
BUILD_TIMEOUT_SECONDS = 900
MEGABYTE = 10**6


def zipped_size(folder: Path) -> tuple[int, int]:
    """Return (unzipped bytes, zipped bytes) of a folder, deflated in memory as SAM zips it."""
    buffer = io.BytesIO()
    unzipped = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                unzipped += path.stat().st_size
                archive.write(path, path.relative_to(folder))
    return unzipped, buffer.tell()


def run() -> dict[str, Any]:
    """Build the artifacts, measure them, and measure what the opensearch-py pin saves."""
    build_dir = CACHE_DIR / "sam-build"
    method, artifacts = _sam_build(build_dir)
    if not artifacts:
        method, artifacts = "pip install --target (sam build failed)", _pip_build(CACHE_DIR / "pip-build")
    sizes = {name: _sizes(folder) for name, folder in sorted(artifacts.items())}
    progress("package sizes", method=method, **{name: f"{figures['zipped_mb']} MB" for name, figures in sizes.items()})
    return {
        "method": method,
        "artifacts": sizes,
        "zip_mb": {name: figures["zipped_mb"] for name, figures in sizes.items()},
        "opensearch_py_pin": _pin_savings(),
    }


def _sizes(folder: Path) -> dict[str, Any]:
    unzipped, zipped = zipped_size(folder)
    site_folders = (folder, folder / "python")
    leftovers = sorted(name for name in RUNTIME_PROVIDED if any((site / name).is_dir() for site in site_folders))
    return {
        "zipped_mb": round(zipped / MEGABYTE, 3),
        "unzipped_mb": round(unzipped / MEGABYTE, 3),
        "zipped_bytes": zipped,
        "runtime_packages_included": leftovers,
    }


def _sam_build(build_dir: Path) -> tuple[str, dict[str, Path]]:
    """Run `make build` into `build_dir`; return the method and the artifact folders, none if it failed."""
    if not (REPO / ".venv-tools" / "bin" / "sam").exists():
        return "", {}
    shutil.rmtree(build_dir, ignore_errors=True)
    completed = subprocess.run(
        ["make", "--no-print-directory", "build", f"BUILD_DIR={build_dir}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        progress("make build failed; building the layer with pip instead", error=repr(last_line))
        return "", {}
    artifacts = {path.name: path for path in build_dir.iterdir() if path.is_dir()}
    return "make build (sam build, arm64)", artifacts


def _pip_build(folder: Path) -> dict[str, Path]:
    shutil.rmtree(folder, ignore_errors=True)
    layer = folder / LAYER_ARTIFACT
    _pip_install_layer(layer / "python", LAYER_REQUIREMENTS.read_text())
    shutil.copytree(LAYER_SOURCE, layer / "python" / "ti_anomali", ignore=shutil.ignore_patterns("__pycache__"))
    artifacts = {LAYER_ARTIFACT: layer}
    for handler in sorted((REPO / "functions").glob("*/app.py")):
        target = folder / handler.parent.name
        shutil.copytree(handler.parent, target, ignore=shutil.ignore_patterns("__pycache__"))
        artifacts[handler.parent.name] = target
    return artifacts


def _pip_install_layer(target: Path, requirements: str) -> None:
    """Install `requirements` for the Lambda runtime into `target`, without the runtime's own packages."""
    target.mkdir(parents=True, exist_ok=True)
    requirements_file = target.parent / "requirements.txt"
    requirements_file.write_text(requirements)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-warn-conflicts",
            "--target",
            str(target),
            *PIP_TARGET_FLAGS,
            "-r",
            str(requirements_file),
        ],
        check=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    requirements_file.unlink()
    shutil.rmtree(target / "bin", ignore_errors=True)
    for name in RUNTIME_PROVIDED:
        shutil.rmtree(target / name, ignore_errors=True)
        for path in target.glob(f"{name}-*.dist-info"):
            shutil.rmtree(path)


def _pin_savings() -> dict[str, Any]:
    """Build the layer's dependencies with opensearch-py as pinned and with 3.x; compare zipped sizes."""
    folder = CACHE_DIR / "pin-comparison"
    shutil.rmtree(folder, ignore_errors=True)
    pinned_requirements = LAYER_REQUIREMENTS.read_text()
    unpinned_requirements = re.sub(r"(?m)^opensearch-py\b.*$", OPENSEARCH_PY_3, pinned_requirements)
    builds = {"pinned": pinned_requirements, "opensearch_py_3": unpinned_requirements}
    figures: dict[str, Any] = {}
    for label, requirements in builds.items():
        target = folder / label / "python"
        _pip_install_layer(target, requirements)
        _, zipped = zipped_size(target.parent)
        figures[label] = {
            "zipped_mb": round(zipped / MEGABYTE, 2),
            "distributions": sorted(path.name.removesuffix(".dist-info") for path in target.glob("*.dist-info")),
        }
    pinned = set(figures["pinned"]["distributions"])
    figures["added_by_opensearch_py_3"] = sorted(set(figures["opensearch_py_3"]["distributions"]) - pinned)
    figures["saved_mb"] = round(figures["opensearch_py_3"]["zipped_mb"] - figures["pinned"]["zipped_mb"], 2)
    progress("opensearch-py pin", saved_mb=figures["saved_mb"], added=",".join(figures["added_by_opensearch_py_3"]))
    return figures
