"""Fetch, verify and run a local single-node OpenSearch for the tests and `make run`.

The node is OpenSearch's integ-test-zip distribution from Maven Central. That zip contains
only the transport-netty4 module, so `fetch()` adds the lang-painless, reindex and
mapper-extras modules, assembled from their jars on Maven Central. Without them, scripts,
`_update_by_query`, `_delete_by_query`, `_reindex` and `scaled_float` fields are missing.
Every file is checked against the sha512 pinned in opensearch_checksums.json.

Command line: `python -m local.opensearch_node fetch|start|stop|status`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKSUMS_PATH = Path(__file__).with_name("opensearch_checksums.json")

OPENSEARCH_VERSION = "2.19.6"
DISTRIBUTION = f"org.opensearch.distribution.integ-test-zip:opensearch:{OPENSEARCH_VERSION}:zip"

# NOTE: the ISM plugin (org.opensearch.plugin:opensearch-index-management:<core>.0:zip) is not
# on Maven Central: 2.19.0.0, 2.19.5.0 and 2.19.6.0 were not found in December 2026. Its
# dependency opensearch-job-scheduler 2.19.6.0 is served, but without the .sha1 file that
# `mvn -C` requires. Add plugin zip coordinates here, in install order, with their sha512.
PLUGIN_ZIPS: tuple[str, ...] = ()

ISM_PLUGIN_NAME = "opensearch-index-management"
CACHE_DIR_ENV = "OPENSEARCH_NODE_CACHE"
FALLBACK_CACHE_DIR = Path("/var/tmp") / "ti-anomali-opensearch"
NODE_USER_ENV = "OPENSEARCH_NODE_USER"
DEFAULT_NODE_USER = "nobody"
DEFAULT_START_TIMEOUT_S = 180.0
DEFAULT_STOP_TIMEOUT_S = 30.0
PORT_ATTEMPTS = 3
LOG_TAIL_LINES = 40
OPENSEARCH_MAIN_CLASS = "org.opensearch.bootstrap.OpenSearch"
INSTALL_MARKER = ".installed.json"


class OpenSearchNodeError(RuntimeError):
    """Failure to fetch, install, start or stop the local OpenSearch node."""


class PortInUseError(OpenSearchNodeError):
    """Failure to start because another process took the node's HTTP or transport port."""


@dataclass(frozen=True)
class ModuleSpec:
    """A bundled OpenSearch module that the integ-test-zip lacks, built from Maven jars."""

    name: str
    classname: str
    description: str
    jars: tuple[str, ...]
    permissions: tuple[str, ...] = ()


# Jars that the distribution already has in lib/ (opensearch-common, reactor-core,
# reactive-streams) are left out, because OpenSearch rejects a module whose jars duplicate
# classes on its own classpath. The classnames come from the 2.19.6 jars.
MODULES: tuple[ModuleSpec, ...] = (
    ModuleSpec(
        name="lang-painless",
        classname="org.opensearch.painless.PainlessPlugin",
        description="Painless scripting language",
        jars=(
            f"org.opensearch.plugin:lang-painless:{OPENSEARCH_VERSION}:jar",
            f"org.opensearch.plugin:opensearch-scripting-painless-spi:{OPENSEARCH_VERSION}:jar",
            "org.antlr:antlr4-runtime:4.13.1:jar",
            "org.ow2.asm:asm:9.7:jar",
            "org.ow2.asm:asm-analysis:9.7:jar",
            "org.ow2.asm:asm-commons:9.7:jar",
            "org.ow2.asm:asm-tree:9.7:jar",
            "org.ow2.asm:asm-util:9.7:jar",
        ),
        # Painless compiles scripts into classes in its own class loader.
        permissions=(
            'java.lang.RuntimePermission "createClassLoader"',
            'java.lang.RuntimePermission "getClassLoader"',
        ),
    ),
    ModuleSpec(
        name="reindex",
        classname="org.opensearch.index.reindex.ReindexPlugin",
        description="Reindex, update by query and delete by query APIs",
        jars=(
            f"org.opensearch.plugin:reindex-client:{OPENSEARCH_VERSION}:jar",
            f"org.opensearch.client:opensearch-rest-client:{OPENSEARCH_VERSION}:jar",
            f"org.opensearch:opensearch-ssl-config:{OPENSEARCH_VERSION}:jar",
            "org.apache.httpcomponents:httpclient:4.5.14:jar",
            "org.apache.httpcomponents:httpcore:4.4.16:jar",
            "org.apache.httpcomponents:httpasyncclient:4.1.5:jar",
            "org.apache.httpcomponents:httpcore-nio:4.4.16:jar",
            "commons-codec:commons-codec:1.18.0:jar",
            "commons-logging:commons-logging:1.2:jar",
        ),
        # The official module grants socket permissions for reindex from a remote cluster.
        # This one grants none, and reindex.remote.allowlist is empty by default, so a remote
        # reindex request is rejected.
    ),
    ModuleSpec(
        name="mapper-extras",
        classname="org.opensearch.index.mapper.MapperExtrasPlugin",
        description="Field mappers such as scaled_float, rank_feature and token_count",
        jars=(f"org.opensearch.plugin:mapper-extras-client:{OPENSEARCH_VERSION}:jar",),
    ),
)


@dataclass(frozen=True)
class Artifact:
    """A Maven artifact named by a `group:artifact:version:type` coordinate."""

    group_id: str
    artifact_id: str
    version: str
    type: str

    @classmethod
    def parse(cls, coordinate: str) -> Artifact:
        """Parse a `group:artifact:version:type` coordinate."""
        parts = coordinate.split(":")
        if len(parts) != 4 or not all(parts):
            raise ValueError(f"invalid Maven coordinate {coordinate!r}: expected group:artifact:version:type")
        return cls(*parts)

    @property
    def coordinate(self) -> str:
        """The `group:artifact:version:type` coordinate."""
        return f"{self.group_id}:{self.artifact_id}:{self.version}:{self.type}"

    @property
    def file_name(self) -> str:
        """The file name that Maven gives the artifact (no classifier)."""
        return f"{self.artifact_id}-{self.version}.{self.type}"


def cache_dir() -> Path:
    """Return the cache folder: $OPENSEARCH_NODE_CACHE, or .cache/opensearch in the repository.

    When root runs this and the node's user cannot enter the repository (a clone under /root, say),
    the cache goes to /var/tmp/ti-anomali-opensearch instead, so the node can still start.
    """
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).resolve()
    user = _node_user()
    if user is not None:
        try:
            _check_user_can_enter(REPO_ROOT, user)
        except OpenSearchNodeError:
            return FALLBACK_CACHE_DIR
    return REPO_ROOT / ".cache" / "opensearch"


def required_artifacts() -> list[Artifact]:
    """Return every artifact that `fetch()` downloads: distribution, module jars, plugin zips."""
    coordinates = [DISTRIBUTION]
    for module in MODULES:
        coordinates.extend(module.jars)
    coordinates.extend(PLUGIN_ZIPS)
    return [Artifact.parse(coordinate) for coordinate in coordinates]


def load_checksums(path: Path = CHECKSUMS_PATH) -> dict[str, str]:
    """Load the pinned sha512 of each artifact coordinate and check that none is missing."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise OpenSearchNodeError(f"cannot read pinned checksums from {path}: {error}") from error

    checksums = document.get("sha512")
    if not isinstance(checksums, dict):
        raise OpenSearchNodeError(f"invalid {path}: expected an object under the key 'sha512'")

    missing = [a.coordinate for a in required_artifacts() if a.coordinate not in checksums]
    if missing:
        raise OpenSearchNodeError(
            f"no pinned sha512 in {path} for: {', '.join(missing)}. "
            "Fetch the artifact once with Maven, review it, and add its sha512 there."
        )
    return {str(key): str(value).lower() for key, value in checksums.items()}


def sha512_of(path: Path) -> str:
    """Return the hex sha512 digest of a file."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha512").hexdigest()


# ---------------------------------------------------------------------------------------
# Fetch and install
# ---------------------------------------------------------------------------------------


def fetch() -> Path:
    """Download, verify and unpack the distribution once, and return its home folder.

    The install is built in a staging folder and renamed into place, so an interrupted
    run never leaves a half-unpacked home that a later run would reuse.
    """
    checksums = load_checksums()
    home = cache_dir() / OPENSEARCH_VERSION
    expected_marker = _install_marker(checksums)
    if _read_marker(home) == expected_marker:
        return home

    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(cache / ".fetch.lock"):
        if _read_marker(home) == expected_marker:
            return home
        _remove_stale_staging(cache)

        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{OPENSEARCH_VERSION}-", dir=cache))
        try:
            files = _download_artifacts(staging / "artifacts", staging / "pom.xml")
            _verify_checksums(files, checksums)
            new_home = _unpack_distribution(files[DISTRIBUTION], staging / "unpack")
            for module in MODULES:
                _install_module(new_home, module, files)
            java_home = find_java_home()
            for coordinate in PLUGIN_ZIPS:
                _install_plugin(new_home, files[coordinate], java_home)
            _write_json(new_home / INSTALL_MARKER, expected_marker)
            new_home.chmod(0o755)

            if home.exists():
                # A home without the current marker was built from other pinned artifacts.
                home.rename(staging / "previous-home")
            new_home.rename(home)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    logger.info("installed OpenSearch %s in %s (%.1f s)", OPENSEARCH_VERSION, home, time.monotonic() - started)
    return home


def _install_marker(checksums: dict[str, str]) -> dict[str, Any]:
    """Describe an install, so a change of artifacts, modules or plugins makes fetch() rebuild it."""
    return {
        "opensearch_version": OPENSEARCH_VERSION,
        "artifacts": {a.coordinate: checksums[a.coordinate] for a in required_artifacts()},
        "modules": [module.name for module in MODULES],
        "plugins": list(PLUGIN_ZIPS),
    }


def _read_marker(home: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((home / INSTALL_MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on a file, so parallel fetches install one at a time."""
    with path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _remove_stale_staging(cache: Path) -> None:
    """Remove staging folders that interrupted fetches left. The caller must hold the fetch lock."""
    for leftover in cache.glob(".staging-*"):
        logger.info("removing staging folder of an interrupted fetch: %s", leftover)
        shutil.rmtree(leftover, ignore_errors=True)


def _download_artifacts(output_dir: Path, pom_path: Path) -> dict[str, Path]:
    """Copy every required artifact from Maven Central (through ~/.m2) into output_dir.

    A throwaway POM lists the artifacts without their dependencies, so one Maven run
    resolves them all. `-C` makes a checksum mismatch against Central's .sha1 fatal.
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        raise OpenSearchNodeError("Maven (mvn) not found on PATH: install it, for example with 'apt-get install maven'")

    artifacts = required_artifacts()
    pom_path.write_text(_throwaway_pom(artifacts), encoding="utf-8")
    command = [
        mvn,
        "-B",
        "-q",
        "-C",
        "-Dstyle.color=never",
        "-f",
        str(pom_path),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
        "-DexcludeTransitive=true",
    ]
    logger.info("resolving %d artifacts with Maven", len(artifacts))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
        raise OpenSearchNodeError(
            f"Maven failed (exit {result.returncode}) to download the OpenSearch artifacts. "
            "Check that Maven Central is reachable. Maven output:\n" + "\n".join(output)
        )

    files: dict[str, Path] = {}
    for artifact in artifacts:
        path = output_dir / artifact.file_name
        if not path.is_file():
            raise OpenSearchNodeError(f"Maven reported success but {path} for {artifact.coordinate} is missing")
        files[artifact.coordinate] = path
    return files


def _throwaway_pom(artifacts: list[Artifact]) -> str:
    dependencies = "\n".join(
        f"    <dependency><groupId>{a.group_id}</groupId><artifactId>{a.artifact_id}</artifactId>"
        f"<version>{a.version}</version><type>{a.type}</type>"
        "<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>"
        "</dependency>"
        for a in artifacts
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>local</groupId><artifactId>opensearch-node-fetch</artifactId>"
        "<version>0</version><packaging>pom</packaging>\n"
        f"  <dependencies>\n{dependencies}\n  </dependencies>\n"
        "</project>\n"
    )


def _verify_checksums(files: dict[str, Path], checksums: dict[str, str]) -> None:
    """Raise unless every downloaded file has its pinned sha512."""
    for coordinate, path in files.items():
        actual = sha512_of(path)
        expected = checksums[coordinate]
        if actual != expected:
            artifact = Artifact.parse(coordinate)
            local_repo_dir = (
                Path.home()
                / ".m2"
                / "repository"
                / artifact.group_id.replace(".", "/")
                / artifact.artifact_id
                / artifact.version
            )
            raise OpenSearchNodeError(
                f"sha512 mismatch for {coordinate}: expected {expected}, got {actual}. "
                f"The copy in the local Maven repository (usually {local_repo_dir}) may be corrupt: "
                f"delete it and run fetch again. If the artifact was changed on purpose, review it "
                f"and update {CHECKSUMS_PATH}."
            )


def _unpack_distribution(zip_path: Path, target: Path) -> Path:
    """Unpack the distribution zip, keeping file modes, and return its top-level folder."""
    target.mkdir(parents=True)
    root = target.resolve()
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            destination = (target / member.filename).resolve()
            if not destination.is_relative_to(root):
                raise OpenSearchNodeError(
                    f"cannot unpack {zip_path}: entry {member.filename!r} points outside the target folder"
                )
            archive.extract(member, target)
            mode = (member.external_attr >> 16) & 0o777
            if mode:
                destination.chmod(mode)

    top_level = [path for path in target.iterdir() if path.is_dir()]
    if len(top_level) != 1:
        raise OpenSearchNodeError(f"expected one top-level folder in {zip_path}, found {len(top_level)}")
    return top_level[0]


def _install_module(home: Path, module: ModuleSpec, files: dict[str, Path]) -> None:
    """Write a module folder in the layout that OpenSearch's own modules have."""
    module_dir = home / "modules" / module.name
    if module_dir.exists():
        raise OpenSearchNodeError(f"{module_dir} already exists: the distribution ships {module.name} itself")
    module_dir.mkdir(mode=0o755)
    for coordinate in module.jars:
        shutil.copyfile(files[coordinate], module_dir / Artifact.parse(coordinate).file_name)

    descriptor = {
        "description": module.description,
        "version": OPENSEARCH_VERSION,
        "name": module.name,
        "classname": module.classname,
        # The 2.19.6 jars are compiled for Java 11 (X-Compile-Target-JDK in their manifests).
        "java.version": "11",
        "opensearch.version": OPENSEARCH_VERSION,
    }
    lines = [f"{key}={value}" for key, value in descriptor.items()]
    (module_dir / "plugin-descriptor.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")

    if module.permissions:
        grants = "".join(f"  permission {permission};\n" for permission in module.permissions)
        (module_dir / "plugin-security.policy").write_text(f"grant {{\n{grants}}};\n", encoding="utf-8")


def _install_plugin(home: Path, zip_path: Path, java_home: Path) -> None:
    """Install a plugin zip with bin/opensearch-plugin."""
    # NOTE: never run yet, because PLUGIN_ZIPS is empty (no ISM zip is on Maven Central).
    env = _java_env(java_home)
    env["OPENSEARCH_PATH_CONF"] = str(home / "config")
    command = [str(home / "bin" / "opensearch-plugin"), "install", "--batch", zip_path.as_uri()]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OpenSearchNodeError(
            f"installing plugin {zip_path.name} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------
# Java, ports and the user that runs the node
# ---------------------------------------------------------------------------------------


def find_java_home() -> Path:
    """Return the JDK to run OpenSearch with: $OPENSEARCH_JAVA_HOME, $JAVA_HOME, or java on PATH."""
    for variable in ("OPENSEARCH_JAVA_HOME", "JAVA_HOME"):
        value = os.environ.get(variable)
        if value:
            java_home = Path(value)
            if not (java_home / "bin" / "java").is_file():
                raise OpenSearchNodeError(f"${variable} is {value}, but {java_home}/bin/java does not exist")
            return java_home

    java = shutil.which("java")
    if java is None:
        raise OpenSearchNodeError("Java not found: set JAVA_HOME to a JDK that OpenSearch 2.19 supports (11, 17 or 21)")
    return Path(java).resolve().parents[1]


def _java_env(java_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for variable in ("JAVA_TOOL_OPTIONS", "JAVA_OPTS", "KEYSTORE_PASSWORD", "OPENSEARCH_PATH_CONF"):
        env.pop(variable, None)
    env["OPENSEARCH_JAVA_HOME"] = str(java_home)
    return env


def _pick_free_port(exclude: set[int]) -> int:
    """Return a TCP port on 127.0.0.1 that is free now, though another process may take it before use."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in exclude:
            return port


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _node_user() -> pwd.struct_passwd | None:
    """Return the user to run the node as, or None unless this process is root (OpenSearch rejects root)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get(NODE_USER_ENV, DEFAULT_NODE_USER)
    try:
        return pwd.getpwnam(name)
    except KeyError as error:
        raise OpenSearchNodeError(
            f"OpenSearch will not start as root, and the user {name!r} to run it as does not exist: "
            f"set ${NODE_USER_ENV} to an existing unprivileged user"
        ) from error


def _check_user_can_enter(path: Path, user: pwd.struct_passwd) -> None:
    """Raise unless the user may traverse every folder from / down to path."""
    for folder in [*reversed(path.parents), path]:
        mode = folder.stat()
        if mode.st_uid == user.pw_uid:
            allowed = bool(mode.st_mode & stat.S_IXUSR)
        elif mode.st_gid == user.pw_gid:
            allowed = bool(mode.st_mode & stat.S_IXGRP)
        else:
            allowed = bool(mode.st_mode & stat.S_IXOTH)
        if not allowed:
            raise OpenSearchNodeError(
                f"OpenSearch will not start as root, so it runs as user {user.pw_name!r}, who cannot enter "
                f"{folder}. Set ${CACHE_DIR_ENV} and the node's data folder to paths that user can "
                f"enter, for example under /var/tmp."
            )


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    os.chown(path, user.pw_uid, user.pw_gid)
    for folder, subfolders, file_names in os.walk(path):
        for name in [*subfolders, *file_names]:
            os.chown(os.path.join(folder, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text.splitlines()[-lines:])


def _http_session() -> requests.Session:
    """Return a session that ignores proxy variables, so requests stay on the loopback address."""
    session = requests.Session()
    session.trust_env = False
    return session


# ---------------------------------------------------------------------------------------
# The running node
# ---------------------------------------------------------------------------------------


class RunningNode:
    """A local OpenSearch process with its own ports and data, logs and config folders."""

    def __init__(
        self,
        *,
        home: Path,
        base_dir: Path,
        http_port: int,
        transport_port: int,
        heap_mb: int,
        remove_base_dir: bool,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
    ) -> None:
        self.home = home
        self.base_dir = base_dir
        self.http_port = http_port
        self.transport_port = transport_port
        self.heap_mb = heap_mb
        self.start_timeout_s = start_timeout_s
        self.version = ""
        self.has_ism = False
        self._remove_base_dir = remove_base_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False
        atexit.register(self.close)

    @property
    def url(self) -> str:
        """The HTTP address, `http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int | None:
        """The process id of the node's JVM, or None while it is stopped."""
        return self._process.pid if self._process is not None else None

    @property
    def data_dir(self) -> Path:
        """The folder that path.data points to."""
        return self.base_dir / "data"

    @property
    def logs_dir(self) -> Path:
        """The folder that path.logs points to, which also contains console.log with the process output."""
        return self.base_dir / "logs"

    @property
    def config_dir(self) -> Path:
        """The node's copy of the distribution's config folder."""
        return self.base_dir / "config"

    def is_running(self) -> bool:
        """Return whether the node's process is alive (it may still be starting)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the node on its ports and folders, and wait until the cluster is yellow or green."""
        if self._closed:
            raise OpenSearchNodeError(f"node {self.url} was closed or detached: start a new one with start_node()")
        if self.is_running():
            return

        user = _node_user()
        self._prepare_folders(user)
        java_home = find_java_home()
        env = _java_env(java_home)
        env["OPENSEARCH_PATH_CONF"] = str(self.config_dir)
        env["OPENSEARCH_JAVA_OPTS"] = f"-Xms{self.heap_mb}m -Xmx{self.heap_mb}m"
        env["OPENSEARCH_TMPDIR"] = str(self.base_dir / "tmp")
        env["HOME"] = str(self.base_dir)

        console_log = self.logs_dir / "console.log"
        logger.info("starting OpenSearch at %s with data in %s", self.url, self.data_dir)
        with console_log.open("ab") as output:
            self._process = subprocess.Popen(  # noqa: S603 - fixed command, no shell
                [str(self.home / "bin" / "opensearch")],
                cwd=self.base_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                extra_groups=[] if user else None,
            )

        try:
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise
        logger.info("OpenSearch %s is ready at %s (pid %s)", self.version, self.url, self.pid)

    def stop(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """Stop the process with SIGTERM, and with SIGKILL after timeout_s. Ports and folders are kept."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            logger.info("stopping OpenSearch at %s (pid %d)", self.url, process.pid)
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "OpenSearch pid %d did not stop within %.0f s of SIGTERM, sending SIGKILL",
                    process.pid,
                    timeout_s,
                )
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        self._process = None

    def kill(self) -> None:
        """Kill the process with SIGKILL, as a crash would. Ports and folders are kept."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            logger.info("killing OpenSearch at %s (pid %d)", self.url, process.pid)
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        self._process = None

    def restart(self) -> None:
        """Stop the node if it runs, and start it again on the same ports and data folder."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the node and remove its folders if start_node() created them."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        atexit.unregister(self.close)
        if self._remove_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def detach(self) -> None:
        """Leave the node running after this Python process exits (used by the `start` command)."""
        atexit.unregister(self.close)
        self._closed = True
        self._process = None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last lines of the process output and of the server log."""
        server_log = self.logs_dir / f"{self._cluster_name}.log"
        return (
            f"--- {self.logs_dir / 'console.log'} ---\n{_tail(self.logs_dir / 'console.log', lines)}\n"
            f"--- {server_log} ---\n{_tail(server_log, lines)}"
        )

    def __enter__(self) -> RunningNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunningNode(url={self.url!r}, pid={self.pid}, base_dir={str(self.base_dir)!r})"

    @property
    def _cluster_name(self) -> str:
        return f"local-{self.http_port}"

    def _prepare_folders(self, user: pwd.struct_passwd | None) -> None:
        """Create the node's folders and write its config. An existing data folder is kept."""
        for folder in (self.data_dir, self.logs_dir, self.base_dir / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
        if not self.config_dir.exists():
            shutil.copytree(self.home / "config", self.config_dir)
        self._write_jvm_options()
        self._write_settings()
        if user is not None:
            _chown_tree(self.base_dir, user)
            _check_user_can_enter(self.home, user)
            _check_user_can_enter(self.base_dir, user)

    def _write_jvm_options(self) -> None:
        """Point the relative log and heap dump paths of jvm.options at this node's folders."""
        # The distribution's jvm.options writes gc.log and crash files to `logs/` relative to
        # the working folder. Two nodes sharing one folder would rotate each other's files.
        original = (self.home / "config" / "jvm.options").read_text(encoding="utf-8")
        rewritten = (
            original.replace("file=logs/", f"file={self.logs_dir}/")
            .replace("-XX:ErrorFile=logs/", f"-XX:ErrorFile={self.logs_dir}/")
            .replace("-XX:HeapDumpPath=data", f"-XX:HeapDumpPath={self.data_dir}")
            .replace("-Xloggc:logs/", f"-Xloggc:{self.logs_dir}/")
        )
        (self.config_dir / "jvm.options").write_text(rewritten, encoding="utf-8")

    def _write_settings(self) -> None:
        settings = {
            "cluster.name": self._cluster_name,
            "node.name": self._cluster_name,
            "network.host": "127.0.0.1",
            "http.port": self.http_port,
            "transport.port": self.transport_port,
            "discovery.type": "single-node",
            "path.data": str(self.data_dir),
            "path.logs": str(self.logs_dir),
            # A nearly full disk on a developer machine must not turn indices read-only.
            "cluster.routing.allocation.disk.threshold_enabled": False,
        }
        lines = [f"{key}: {json.dumps(value)}" for key, value in settings.items()]
        (self.config_dir / "opensearch.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _wait_until_ready(self) -> None:
        """Wait for a yellow or green cluster, and raise with the log tail on process exit or timeout."""
        deadline = time.monotonic() + self.start_timeout_s
        health_url = f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=2s"
        with _http_session() as session:
            while True:
                process = self._process
                if process is None or process.poll() is not None:
                    code = process.returncode if process is not None else None
                    tail = self.log_tail()
                    if "BindException" in tail or "Address already in use" in tail:
                        raise PortInUseError(
                            f"OpenSearch could not bind port {self.http_port} or {self.transport_port}"
                        )
                    raise OpenSearchNodeError(f"OpenSearch exited with code {code} during startup.\n{tail}")

                try:
                    response = session.get(health_url, timeout=5)
                    if response.ok and response.json().get("status") in ("green", "yellow"):
                        break
                except requests.RequestException:
                    pass

                if time.monotonic() > deadline:
                    raise OpenSearchNodeError(
                        f"OpenSearch at {self.url} was not yellow or green after "
                        f"{self.start_timeout_s:.0f} s.\n{self.log_tail()}"
                    )
                time.sleep(0.25)

            root = session.get(self.url, timeout=5).json()
            self.version = str(root["version"]["number"])
            plugins = session.get(f"{self.url}/_cat/plugins?format=json", timeout=5).json()
            self.has_ism = any(entry.get("component") == ISM_PLUGIN_NAME for entry in plugins)


def _signal_group(pid: int, signal_number: int) -> None:
    """Send a signal to the process group that start_new_session gave the node."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal_number)


def start_node(
    data_dir: Path | None = None,
    port: int | None = None,
    heap_mb: int = 512,
    *,
    timeout_s: float = DEFAULT_START_TIMEOUT_S,
) -> RunningNode:
    """Fetch if needed, start a node on 127.0.0.1 and return it once the cluster is yellow or green.

    data_dir is the base folder for the node's data/, logs/ and config/. When it is None, a
    new temporary folder is used and close() removes it. port is the HTTP port, and a free
    one is picked when it is None. The transport port is always picked free.
    """
    home = fetch()
    if port is not None and not _port_is_free(port):
        raise OpenSearchNodeError(
            f"port {port} on 127.0.0.1 is already in use: stop what listens there or pick another"
        )

    attempts = 1 if port is not None else PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        base_dir = Path(tempfile.mkdtemp(prefix="opensearch-node-")) if data_dir is None else data_dir
        base_dir.mkdir(parents=True, exist_ok=True)
        http_port = port if port is not None else _pick_free_port(set())
        transport_port = _pick_free_port({http_port})
        node = RunningNode(
            home=home,
            base_dir=base_dir.resolve(),
            http_port=http_port,
            transport_port=transport_port,
            heap_mb=heap_mb,
            remove_base_dir=data_dir is None,
            start_timeout_s=timeout_s,
        )
        try:
            node.start()
        except PortInUseError:
            node.close()
            if attempt == attempts:
                raise
            logger.warning("port %d or %d was taken during startup, retrying with new ports", http_port, transport_port)
            continue
        except BaseException:
            node.close()
            raise
        return node
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def _state_path() -> Path:
    return cache_dir() / "node.json"


def _read_state() -> dict[str, Any] | None:
    try:
        state = json.loads(_state_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as error:
        raise OpenSearchNodeError(f"cannot read {_state_path()}: {error}. Delete it if no node is running.") from error
    return state if isinstance(state, dict) else None


def _is_node_process(pid: int) -> bool:
    """Return whether pid is alive and is an OpenSearch JVM, not a reused process id."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return OPENSEARCH_MAIN_CLASS.encode() in command_line


def _terminate_pid(pid: int, timeout_s: float) -> None:
    """Stop a node started by another Python process: SIGTERM, then SIGKILL after timeout_s."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _is_node_process(pid):
        if time.monotonic() > deadline:
            logger.warning("OpenSearch pid %d did not stop within %.0f s of SIGTERM, sending SIGKILL", pid, timeout_s)
            _signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout_s
        time.sleep(0.2)


def _command_fetch(_: argparse.Namespace) -> int:
    started = time.monotonic()
    home = fetch()
    print(f"OpenSearch {OPENSEARCH_VERSION} is ready to run from {home} ({time.monotonic() - started:.1f} s)")
    return 0


def _command_start(args: argparse.Namespace) -> int:
    state = _read_state()
    if state is not None and _is_node_process(int(state["pid"])):
        print(f"a node already runs at {state['url']} (pid {state['pid']}): run 'stop' first", file=sys.stderr)
        return 1

    data_dir = Path(args.data_dir) if args.data_dir else cache_dir() / "node"
    node = start_node(data_dir=data_dir, port=args.port, heap_mb=args.heap_mb, timeout_s=args.timeout)
    pid = node.pid
    node.detach()

    state = {
        "pid": pid,
        "url": node.url,
        "http_port": node.http_port,
        "transport_port": node.transport_port,
        "data_dir": str(node.base_dir),
        "home": str(node.home),
        "version": node.version,
        "has_ism": node.has_ism,
        "pid_file": str(Path(args.pid_file).resolve()) if args.pid_file else None,
    }
    _write_json(_state_path(), state)
    if args.pid_file:
        Path(args.pid_file).write_text(f"{pid}\n", encoding="utf-8")
    print(node.url)
    return 0


def _command_stop(args: argparse.Namespace) -> int:
    state = _read_state()
    if state is None:
        print("no node is running (no state file)")
        return 0
    pid = int(state["pid"])
    if _is_node_process(pid):
        _terminate_pid(pid, args.timeout)
        print(f"stopped the node at {state['url']} (pid {pid})")
    else:
        print(f"the node at {state['url']} (pid {pid}) was not running, so only its state file was removed")
    _state_path().unlink(missing_ok=True)
    if state.get("pid_file"):
        Path(state["pid_file"]).unlink(missing_ok=True)
    return 0


def _command_status(_: argparse.Namespace) -> int:
    state = _read_state()
    if state is None or not _is_node_process(int(state["pid"])):
        print("stopped")
        return 3
    try:
        with _http_session() as session:
            health = session.get(f"{state['url']}/_cluster/health", timeout=5).json()
        status = health.get("status", "unknown")
    except (requests.RequestException, ValueError) as error:
        status = f"not answering ({error})"
    print(f"running at {state['url']} (pid {state['pid']}, data {state['data_dir']}): cluster {status}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line: fetch, start, stop or status."""
    parser = argparse.ArgumentParser(
        prog="python -m local.opensearch_node", description="Run a local OpenSearch node for tests."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    fetch_parser = commands.add_parser("fetch", help="download, verify and unpack OpenSearch into the cache")
    fetch_parser.set_defaults(handler=_command_fetch)

    start_parser = commands.add_parser("start", help="start a node in the background and print its URL")
    start_parser.add_argument("--port", type=int, help="HTTP port on 127.0.0.1 (default: a free port)")
    start_parser.add_argument("--pid-file", help="file to write the node's process id to")
    start_parser.add_argument(
        "--data-dir", help="base folder for data, logs and config (default: node/ in the cache folder)"
    )
    start_parser.add_argument("--heap-mb", type=int, default=512, help="JVM heap size in MiB (default: 512)")
    start_parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_START_TIMEOUT_S,
        help="seconds to wait for a yellow or green cluster (default: 180)",
    )
    start_parser.set_defaults(handler=_command_start)

    stop_parser = commands.add_parser("stop", help="stop the node that 'start' started")
    stop_parser.add_argument(
        "--timeout", type=float, default=DEFAULT_STOP_TIMEOUT_S, help="seconds before SIGKILL (default: 30)"
    )
    stop_parser.set_defaults(handler=_command_stop)

    status_parser = commands.add_parser("status", help="print whether the node is running (exit code 3 when it is not)")
    status_parser.set_defaults(handler=_command_status)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        return int(args.handler(args))
    except OpenSearchNodeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
