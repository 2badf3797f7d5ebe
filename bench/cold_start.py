"""Cold start: import time of each handler module, minus the import time of boto3 alone.

Each figure is the median of fresh processes running `python -X importtime -c "import app"` with
`functions/<name>` on the path. The handlers build their settings, clients and adapters at module
level, so the import includes that work. The environment points them at the local parts, with
tracing on and SigV4 signing for the engine, as the template deploys them. The fetch handler reads
its ThreatStream secret from moto, and nothing is sent to the engine during the import.

Two bytecode states are measured, each with its own `PYTHONPYCACHEPREFIX` folder:
- `with_bytecode`: every module has a cached .pyc, as on a machine that has run the code before.
- `layer_without_bytecode`: only the standard library, boto3, botocore and s3transfer have a .pyc,
  as in Lambda, where the runtime ships compiled boto3 and the layer, built with `--no-compile`
  on a read-only /opt, is compiled again on every cold start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import median, progress
from bench.stack import REPO, Stack

FUNCTIONS_DIR = REPO / "functions"
CACHE_DIR = REPO / ".cache" / "bench"
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer")
IMPORT_TIMEOUT_SECONDS = 120
BREAKDOWN_ENTRIES = 8
BYTECODE_STATES = ("with_bytecode", "layer_without_bytecode")


@dataclass(frozen=True)
class ImportLine:
    """One line of `-X importtime`: own and cumulative microseconds, nesting level and module name."""

    self_us: int
    cumulative_us: int
    level: int
    module: str


def parse_importtime(stderr: str) -> list[ImportLine]:
    """Parse the `import time:` lines that `-X importtime` writes to stderr."""
    lines: list[ImportLine] = []
    for text in stderr.splitlines():
        if not text.startswith("import time:") or "self [us]" in text:
            continue
        own, cumulative, name = text.removeprefix("import time:").split("|", 2)
        name = name[1:]
        lines.append(ImportLine(int(own), int(cumulative), (len(name) - len(name.lstrip(" "))) // 2, name.strip()))
    return lines


def handler_names() -> list[str]:
    """Return the folders under functions/ that hold a handler module."""
    return sorted(path.parent.name for path in FUNCTIONS_DIR.glob("*/app.py"))


def run(stack: Stack, rounds: int) -> dict[str, Any]:
    """Measure every handler and boto3 alone in both bytecode states, `rounds` processes each."""
    handlers = handler_names()
    prefixes = _prepare_prefixes(stack, handlers)
    results: dict[str, Any] = {}
    for state in BYTECODE_STATES:
        results[state] = _measure_state(stack, handlers, prefixes[state], rounds)
        over_boto3 = {name: figures["over_boto3_ms"] for name, figures in results[state]["handlers"].items()}
        progress(f"cold start ({state})", **over_boto3)
    return {
        "over_boto3_ms": {
            name: figures["over_boto3_ms"] for name, figures in results["with_bytecode"]["handlers"].items()
        },
        "rounds": rounds,
        **results,
    }


def _environment(stack: Stack, handler: str | None, prefix: Path, *, write_bytecode: bool) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    environment["PYTHONPYCACHEPREFIX"] = str(prefix)
    if not write_bytecode:
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
    if handler is None:
        return environment
    function_environment = {
        **stack.fetch_environment("benchcold"),
        **stack.latest_environment(stack.aws.table_name),
        "ENGINE_AUTH": "sigv4",
        "AWS_LAMBDA_FUNCTION_NAME": handler,
        "PUSH_AUTH": "iam",
    }
    function_environment.pop("POWERTOOLS_TRACE_DISABLED")
    search_path = os.pathsep.join(filter(None, [str(FUNCTIONS_DIR / handler), os.environ.get("PYTHONPATH")]))
    return {**environment, **function_environment, "PYTHONPATH": search_path}


def _import(stack: Stack, handler: str | None, prefix: Path, *, write_bytecode: bool = False) -> list[ImportLine]:
    module = "boto3" if handler is None else "app"
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=CACHE_DIR,
        env=_environment(stack, handler, prefix, write_bytecode=write_bytecode),
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"importing {handler or 'boto3'} failed: {last_line}")
    return parse_importtime(completed.stderr)


def _top_level(lines: list[ImportLine], module: str) -> ImportLine:
    for line in lines:
        if line.level == 0 and line.module == module:
            return line
    raise RuntimeError(f"-X importtime printed no line for {module}")


def _prepare_prefixes(stack: Stack, handlers: list[str]) -> dict[str, Path]:
    """Fill one bytecode folder for everything, and copy the runtime's share of it to a second one."""
    full = CACHE_DIR / "pycache-all"
    runtime_only = CACHE_DIR / "pycache-runtime-only"
    for folder in (full, runtime_only):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    _import(stack, None, full, write_bytecode=True)
    for handler in handlers:
        _import(stack, handler, full, write_bytecode=True)

    site_packages = Path(sysconfig.get_paths()["purelib"])
    kept_sources = [Path(sysconfig.get_paths()["stdlib"])] + [site_packages / name for name in RUNTIME_PACKAGES]
    for pyc in full.rglob("*.pyc"):
        source_folder = Path("/") / pyc.parent.relative_to(full)
        if any(source_folder.is_relative_to(kept) for kept in kept_sources):
            target = runtime_only / pyc.relative_to(full)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(pyc, target)
    return {"with_bytecode": full, "layer_without_bytecode": runtime_only}


def _measure_state(stack: Stack, handlers: list[str], prefix: Path, rounds: int) -> dict[str, Any]:
    boto3_us: list[int] = []
    handler_us: dict[str, list[int]] = {name: [] for name in handlers}
    last_lines: dict[str, list[ImportLine]] = {}
    for _ in range(rounds):
        boto3_us.append(_top_level(_import(stack, None, prefix), "boto3").cumulative_us)
        for name in handlers:
            lines = _import(stack, name, prefix)
            handler_us[name].append(_top_level(lines, "app").cumulative_us)
            last_lines[name] = lines
    boto3_ms = median(boto3_us) / 1000
    return {
        "boto3_ms": round(boto3_ms, 1),
        "boto3_rounds_ms": [round(value / 1000, 1) for value in boto3_us],
        "handlers": {
            name: {
                "import_ms": round(median(handler_us[name]) / 1000, 1),
                "over_boto3_ms": round(median(handler_us[name]) / 1000 - boto3_ms, 1),
                "rounds_ms": [round(value / 1000, 1) for value in handler_us[name]],
                **_breakdown(last_lines[name]),
            }
            for name in handlers
        },
    }


def _breakdown(lines: list[ImportLine]) -> dict[str, Any]:
    """Return the handler module's own time and its slowest direct imports, from one process."""
    app_position = next(index for index, line in enumerate(lines) if line.level == 0 and line.module == "app")
    children: list[ImportLine] = []
    for line in reversed(lines[:app_position]):
        if line.level == 0:
            break
        if line.level == 1:
            children.append(line)
    slowest = sorted(children, key=lambda line: line.cumulative_us, reverse=True)[:BREAKDOWN_ENTRIES]
    return {
        "module_body_ms": round(lines[app_position].self_us / 1000, 1),
        "slowest_imports_ms": {line.module: round(line.cumulative_us / 1000, 1) for line in slowest},
    }
