"""The `ti-anomali` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand and return its exit status."""
    parser = argparse.ArgumentParser(prog="ti-anomali", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    from ti_anomali.commands import map as map_command
    from ti_anomali.commands import report as report_command

    map_command.register(commands)
    report_command.register(commands)

    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
