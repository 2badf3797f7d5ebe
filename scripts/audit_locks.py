"""Audit hash-pinned lock files with pip-audit, and report loudly when the audit could not run.

pip-audit's default vulnerability service is PyPI's JSON API (`/pypi/<name>/<version>/json`).
Where that API cannot be reached, pip-audit marks every dependency "not found", prints
"No known vulnerabilities found" and exits 0, which would pass a build that audited nothing.
This script reads pip-audit's JSON report instead and:
- fails when any dependency has a known vulnerability;
- fails when some dependencies were audited and others skipped;
- prints a banner and passes when no dependency could be audited, unless AUDIT_REQUIRED=1,
  which makes that a failure too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PIP_AUDIT = Path(sys.executable).with_name("pip-audit")
TIMEOUT_SECONDS = 600


def audit(lock: Path) -> list[dict]:
    """Run pip-audit on one lock file without installing it and return its dependency reports."""
    command = [
        str(PIP_AUDIT),
        "--requirement",
        str(lock),
        "--require-hashes",
        "--disable-pip",
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    completed = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(completed.stderr)
        raise SystemExit(f"pip-audit failed on {lock} (exit {completed.returncode}) without a JSON report") from None
    return report["dependencies"]


def main() -> int:
    """Audit every lock named on the command line; return the exit code."""
    locks = [Path(argument) for argument in sys.argv[1:]]
    vulnerable, audited, skipped = [], [], []
    for lock in locks:
        for dependency in audit(lock):
            label = f"{dependency['name']} {dependency.get('version', '')} ({lock})".replace("  ", " ")
            if "skip_reason" in dependency:
                skipped.append(f"{label}: {dependency['skip_reason']}")
                continue
            audited.append(label)
            vulnerable += [
                f"{label}: {vuln['id']} (fixed in {', '.join(vuln['fix_versions']) or 'no release'})"
                for vuln in dependency.get("vulns", [])
            ]

    print(f"dependency audit: {len(audited)} audited, {len(skipped)} not audited, {len(vulnerable)} vulnerabilities")
    for line in vulnerable:
        print(f"  vulnerable: {line}", file=sys.stderr)
    if vulnerable:
        return 1
    if skipped and audited:
        for line in skipped:
            print(f"  not audited: {line}", file=sys.stderr)
        return 1
    if skipped:
        banner = "#" * 100
        print(
            f"{banner}\n"
            f"# DEPENDENCY AUDIT SKIPPED: pip-audit could not reach PyPI's vulnerability data for any of the\n"
            f"# {len(skipped)} locked packages ({skipped[0]}).\n"
            f"# Nothing was audited. Run `make audit AUDIT_REQUIRED=1` where PyPI's JSON API is reachable.\n"
            f"{banner}",
            file=sys.stderr,
        )
        return 1 if os.environ.get("AUDIT_REQUIRED") == "1" else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
