"""The summary of a run, its goals, and the generated part of bench/RESULTS.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BEGIN_MARKER = "<!-- bench:generated:begin -->"
END_MARKER = "<!-- bench:generated:end -->"

# Thresholds past which a stage counts as far from its limit: below these ratios, above these sizes and times.
MIN_MAPPING_RATIO = 0.5
MIN_ENGINE_RATIO = 0.8
MAX_IMPORT_MS_OVER_BOTO3 = 150
MAX_PEAK_RSS_MB = 128
MAX_PACKAGE_ZIP_MB = 10


def summary(benchmarks: dict[str, Any]) -> dict[str, Any]:
    """Return the headline figure of every benchmark, None for one that did not run or failed."""
    latest = benchmarks.get("latest") or {}
    return {
        "mapping_vs_json_roundtrip": _get(benchmarks, "mapping", "ratio"),
        "fetch_vs_raw_bulk": _get(benchmarks, "fetch", "ratio"),
        "latest_vs_raw_bulk": _get(latest, "latest_vs_raw_bulk", "ratio"),
        "sweep_100k_seconds": _get(latest, "sweep", "seconds"),
        "handler_import_ms_over_boto3": _get(benchmarks, "cold_start", "over_boto3_ms"),
        "fetch_page_peak_rss_mb": _get(benchmarks, "memory", "peak_rss_mb"),
        "package_zip_mb": _get(benchmarks, "package", "zip_mb"),
    }


def goals(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return, per summary key, the goal and whether this run reached it (None: not measured)."""
    checks = {
        "mapping_vs_json_roundtrip": (f">= {MIN_MAPPING_RATIO}", lambda value: value >= MIN_MAPPING_RATIO),
        "fetch_vs_raw_bulk": (f">= {MIN_ENGINE_RATIO}", lambda value: value >= MIN_ENGINE_RATIO),
        "latest_vs_raw_bulk": (f">= {MIN_ENGINE_RATIO}", lambda value: value >= MIN_ENGINE_RATIO),
        "handler_import_ms_over_boto3": (
            f"<= {MAX_IMPORT_MS_OVER_BOTO3} ms for every handler",
            lambda value: all(ms <= MAX_IMPORT_MS_OVER_BOTO3 for ms in value.values()),
        ),
        "fetch_page_peak_rss_mb": (f"<= {MAX_PEAK_RSS_MB} MB", lambda value: value <= MAX_PEAK_RSS_MB),
        "package_zip_mb": (
            f"<= {MAX_PACKAGE_ZIP_MB} MB for every artifact",
            lambda value: all(mb <= MAX_PACKAGE_ZIP_MB for mb in value.values()),
        ),
    }
    return {
        key: {"goal": goal, "met": None if figures.get(key) is None else bool(check(figures[key]))}
        for key, (goal, check) in checks.items()
    }


def write_markdown(path: Path, results: dict[str, Any]) -> None:
    """Replace the generated part of `path` with this run's figures, keeping the text around it."""
    generated = "\n".join([BEGIN_MARKER, *_render(results), END_MARKER])
    text = path.read_text() if path.exists() else ""
    if BEGIN_MARKER in text and END_MARKER in text:
        before, rest = text.split(BEGIN_MARKER, 1)
        after = rest.split(END_MARKER, 1)[1]
        text = before + generated + after
    else:
        text = f"# Benchmark results\n\n{generated}\n{text}"
    path.write_text(text)


def _get(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _render(results: dict[str, Any]) -> list[str]:
    machine = results["machine"]
    benchmarks = results["benchmarks"]
    lines = [
        f"Run of {results['generated_at']} (commit {machine.get('git_commit')}), "
        f"{results['duration_seconds']:.0f} s in all.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {machine['cpu_model']}, {machine['cores']} cores |",
        f"| memory | {machine['memory_gib']} GiB |",
        f"| Python | {machine['python']} |",
        f"| OpenSearch | {machine.get('opensearch') or 'not started'} |",
        f"| OS | {machine['os']} |",
        f"| load average (1, 5, 15 min) | {machine['load_average_at_start']} at start, "
        f"{machine.get('load_average_at_end')} at end |",
        "",
        "| figure | this run | goal | reached |",
        "|---|---|---|---|",
    ]
    for key, goal in results["goals"].items():
        lines.append(f"| `{key}` | {_show(results['bench_summary'][key])} | {goal['goal']} | {_yes_no(goal['met'])} |")
    sweep = results["bench_summary"].get("sweep_100k_seconds")
    lines.append(f"| `sweep_100k_seconds` | {_show(sweep)} | none set | |")
    lines += ["", *_details(benchmarks)]
    failed = {
        name: figures["error"]
        for name, figures in benchmarks.items()
        if isinstance(figures, dict) and "error" in figures
    }
    if failed:
        lines += ["", "Failed benchmarks:", *[f"- {name}: {error}" for name, error in failed.items()]]
    return lines


def _details(benchmarks: dict[str, Any]) -> list[str]:
    lines = ["| comparison | product (median) | limit (median) | ratio | rounds |", "|---|---|---|---|---|"]
    rows = {
        "mapping vs JSON round trip": benchmarks.get("mapping"),
        "fetch handler vs raw `_bulk`": benchmarks.get("fetch"),
        "MaintainLatest vs raw `_bulk`": _get(benchmarks, "latest", "latest_vs_raw_bulk"),
    }
    for label, figures in rows.items():
        if isinstance(figures, dict) and "ratio" in figures:
            lines.append(
                f"| {label} | {figures['product_median']:.0f} {figures['unit']} | "
                f"{figures['limit_median']:.0f} {figures['unit']} | {figures['ratio']} | {figures['rounds']} |"
            )
    orjson = _get(benchmarks, "mapping", "orjson")
    if isinstance(orjson, dict):
        lines += [
            "",
            f"With orjson {orjson['version']} parsing and serializing (one round, not what the product does): "
            f"mapping {orjson['product_per_second']:.0f} indicators/s, "
            f"JSON round trip {orjson['limit_per_second']:.0f} indicators/s.",
        ]
    lines += _cold_start_lines(benchmarks.get("cold_start"))
    lines += _memory_lines(benchmarks.get("memory"))
    lines += _package_lines(benchmarks.get("package"))
    return lines


def _cold_start_lines(figures: Any) -> list[str]:
    if not isinstance(figures, dict) or "with_bytecode" not in figures:
        return []
    lines = [
        "",
        f"Cold start, median of {figures['rounds']} fresh processes (ms; boto3 alone: "
        f"{figures['with_bytecode']['boto3_ms']} with bytecode, "
        f"{figures['layer_without_bytecode']['boto3_ms']} with the layer compiled at import):",
        "",
        "| handler | import | over boto3 | layer compiled at import: over boto3 | module body | slowest imports |",
        "|---|---|---|---|---|---|",
    ]
    for name, handler in figures["with_bytecode"]["handlers"].items():
        uncompiled = figures["layer_without_bytecode"]["handlers"][name]
        slowest = ", ".join(f"{module} {ms}" for module, ms in list(handler["slowest_imports_ms"].items())[:4])
        lines.append(
            f"| {name} | {handler['import_ms']} | {handler['over_boto3_ms']} | {uncompiled['over_boto3_ms']} | "
            f"{handler['module_body_ms']} | {slowest} |"
        )
    return lines


def _memory_lines(figures: Any) -> list[str]:
    if not isinstance(figures, dict) or "peak_rss_mb" not in figures:
        return []
    return [
        "",
        f"Memory: peak RSS {figures['peak_rss_mb']} MB (MiB) for one page of {figures['indicators']} indicators, "
        f"{figures['peak_rss_mb_after_import']} MB after the import alone; median of {figures['rounds']} processes.",
    ]


def _package_lines(figures: Any) -> list[str]:
    if not isinstance(figures, dict) or "artifacts" not in figures:
        return []
    lines = [
        "",
        f"Packages, built with {figures['method']} (MB = 10^6 bytes):",
        "",
        "| artifact | zipped | unzipped |",
        "|---|---|---|",
    ]
    for name, sizes in figures["artifacts"].items():
        lines.append(f"| {name} | {sizes['zipped_mb']} MB | {sizes['unzipped_mb']} MB |")
    pin = figures.get("opensearch_py_pin")
    if isinstance(pin, dict):
        lines += [
            "",
            f"The opensearch-py 2.8 pin saves {pin['saved_mb']} MB zipped: the layer's dependencies are "
            f"{pin['pinned']['zipped_mb']} MB as pinned and {pin['opensearch_py_3']['zipped_mb']} MB with "
            f"opensearch-py 3.x, which adds {', '.join(pin['added_by_opensearch_py_3']) or 'nothing'}.",
        ]
    return lines


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{name} {figure}" for name, figure in value.items())
    return "not measured" if value is None else str(value)


def _yes_no(met: bool | None) -> str:
    if met is None:
        return "not measured"
    return "yes" if met else "no"
