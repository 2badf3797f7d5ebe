"""Fetch MaxMind's GeoLite2 City *test* database into `.cache/geoip/` and print its path.

The database ships inside the source distribution of the `maxminddb` package on PyPI, so pip
fetches it and nothing else is contacted. It contains made-up entries for a few test networks,
the ones Elastic's pipeline tests use (89.160.20.156 is Linköping, Sweden). It is for tests
and local runs only, never for production lookups.

Run it as `python -m local.geoip_test_db`. A second run finds the cached file and only checks
its SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE_PATH = REPO / ".cache" / "geoip" / "GeoLite2-City-Test.mmdb"

MAXMINDDB_VERSION = "3.2.0"
DATABASE_MEMBER = f"maxminddb-{MAXMINDDB_VERSION}/tests/data/test-data/GeoLite2-City-Test.mmdb"
DATABASE_SHA256 = "f936702b51dcb6c94b286d77a6f182c31a1601baf4b27e8e896934deb41f49f2"
PIP_TIMEOUT_SECONDS = 300


class GeoIPTestDatabaseError(Exception):
    """The test database could not be fetched, read or verified."""


def ensure_test_database(path: Path = CACHE_PATH) -> Path:
    """Return the path of the verified test database, fetching it first when it is missing."""
    if path.is_file():
        _verify(path.read_bytes(), f"cached file {path}", f"delete {path} and run again")
        return path

    content = _download_database()
    _verify(
        content,
        f"{DATABASE_MEMBER} from maxminddb {MAXMINDDB_VERSION}",
        "check DATABASE_SHA256 against a trusted copy of that release",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(content)
    os.replace(partial, path)
    return path


def _download_database() -> bytes:
    with tempfile.TemporaryDirectory(prefix="geoip-test-db-") as folder:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-binary",
            ":all:",
            "--no-deps",
            f"maxminddb=={MAXMINDDB_VERSION}",
            "-d",
            folder,
        ]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS)
        except subprocess.CalledProcessError as exc:
            raise GeoIPTestDatabaseError(
                f"pip could not download maxminddb {MAXMINDDB_VERSION} (exit status {exc.returncode}): "
                f"{exc.stderr.strip()[-2000:]}"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise GeoIPTestDatabaseError(
                f"pip did not download maxminddb {MAXMINDDB_VERSION} within {PIP_TIMEOUT_SECONDS} seconds"
            ) from exc

        archives = sorted(Path(folder).glob(f"maxminddb-{MAXMINDDB_VERSION}.tar.gz"))
        if not archives:
            raise GeoIPTestDatabaseError(f"pip saved no source archive of maxminddb {MAXMINDDB_VERSION}")
        return _read_member(archives[0])


def _read_member(archive: Path) -> bytes:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(DATABASE_MEMBER)
            if member is None:
                raise GeoIPTestDatabaseError(f"{DATABASE_MEMBER} in {archive.name} is not a regular file")
            return member.read()
    except KeyError as exc:
        raise GeoIPTestDatabaseError(f"{archive.name} has no {DATABASE_MEMBER}") from exc
    except (OSError, tarfile.TarError) as exc:
        raise GeoIPTestDatabaseError(f"cannot read {archive.name}: {exc}") from exc


def _verify(content: bytes, description: str, remedy: str) -> None:
    digest = hashlib.sha256(content).hexdigest()
    if digest != DATABASE_SHA256:
        raise GeoIPTestDatabaseError(f"{description} has SHA-256 {digest}, expected {DATABASE_SHA256}: {remedy}")


def main() -> int:
    """Print the path of the test database, fetching it when needed, and return the exit status."""
    try:
        path = ensure_test_database()
    except GeoIPTestDatabaseError as exc:
        print(f"geoip test database: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
