"""Report the size of every artifact `sam build` made and check what the shared layer ships.

Run by `make build` with the tools environment's Python, which has packaging, PyYAML and a
botocore to compare against. It exits non-zero when:
- a function's handler module is missing from its artifact;
- the layer contains boto3, botocore or s3transfer, which the Lambda runtime provides;
- the layer's python-dateutil is not major version 2, or any package in it falls outside the
  range that botocore declares for it (the layer comes first on sys.path, so the runtime's
  botocore would import the layer's copy);
- a compiled extension in the layer is not built for aarch64;
- the function and layer together exceed Lambda's 250 MB unzipped limit.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LAYER_ID = "SharedLayer"
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
# Environment markers of the Lambda runtime, for botocore's conditional requirements.
RUNTIME_MARKERS = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux"}


def directory_sizes(path: Path) -> tuple[int, int]:
    """Return (unzipped bytes, zipped bytes) of a directory, zipped in memory with deflate."""
    buffer = io.BytesIO()
    unzipped = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                unzipped += file.stat().st_size
                archive.write(file, file.relative_to(path))
    return unzipped, buffer.tell()


def human_size(size: int) -> str:
    """Format a byte count in kB below one megabyte and in MB above."""
    return f"{size / 1e3:.1f} kB" if size < 1e6 else f"{size / 1e6:.2f} MB"


def installed_distributions(site: Path) -> dict[str, Version]:
    """Return the version of every distribution installed in a layer's python/ folder."""
    found: dict[str, Version] = {}
    for info in site.glob("*.dist-info"):
        dist = metadata.PathDistribution(info)
        found[canonicalize_name(dist.metadata["Name"])] = Version(dist.version)
    return found


def layer_problems(site: Path) -> list[str]:
    """List what the layer must not ship; an empty list means the layer passes."""
    problems = []
    distributions = installed_distributions(site)
    problems += [
        f"the layer contains {name}, which the Lambda runtime provides and the layer would shadow"
        for name in RUNTIME_PROVIDED
        if name in distributions
    ]

    dateutil = distributions.get("python-dateutil")
    if dateutil is not None and dateutil.major != 2:
        problems.append(f"the layer contains python-dateutil {dateutil}; botocore needs major version 2")

    # NOTE: the ranges come from the botocore in .venv-tools (requirements/tools.lock), not from the
    # runtime's own copy. A runtime botocore with narrower ranges would go unnoticed here.
    for text in metadata.requires("botocore") or []:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(RUNTIME_MARKERS):
            continue
        version = distributions.get(canonicalize_name(requirement.name))
        if version is not None and not requirement.specifier.contains(version, prereleases=True):
            problems.append(
                f"the layer contains {requirement.name} {version}, outside botocore's range {requirement.specifier}"
            )

    problems += [
        f"compiled extension {extension.relative_to(site)} is not built for aarch64"
        for extension in site.rglob("*.so")
        if "aarch64" not in extension.name
    ]
    return problems


class _TemplateLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain values."""


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_TemplateLoader.add_multi_constructor("!", _construct_tagged)


def handler_files(build_dir: Path) -> dict[str, Path]:
    """Return, for each function in the built template, the handler module its artifact must contain."""
    template = yaml.load((build_dir / "template.yaml").read_text(), Loader=_TemplateLoader)  # noqa: S506
    handlers = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        module = properties["Handler"].rpartition(".")[0]
        handlers[logical_id] = build_dir / properties["CodeUri"] / (module.replace(".", "/") + ".py")
    return handlers


def main() -> int:
    """Print the artifact sizes and return 1 when any check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path, help="sam build's output folder, such as .aws-sam/build")
    args = parser.parse_args()

    problems = []
    sizes = {}
    print(f"{'artifact':<32} {'unzipped':>12} {'zipped':>12}")
    for artifact in sorted(path for path in args.build_dir.iterdir() if path.is_dir()):
        unzipped, zipped = directory_sizes(artifact)
        sizes[artifact.name] = unzipped
        print(f"{artifact.name:<32} {human_size(unzipped):>12} {human_size(zipped):>12}")

    for function, handler in handler_files(args.build_dir).items():
        if not handler.is_file():
            problems.append(f"{function} has no {handler.name}: its handler module is missing from the build")

    layer_site = args.build_dir / LAYER_ID / "python"
    if not layer_site.is_dir():
        problems.append(f"{layer_site} is missing: the shared layer was not built")
    else:
        problems += layer_problems(layer_site)
        for artifact, unzipped in sizes.items():
            if artifact != LAYER_ID and unzipped + sizes[LAYER_ID] > LAMBDA_UNZIPPED_LIMIT_BYTES:
                problems.append(f"{artifact} and the layer exceed Lambda's 250 MB unzipped limit")

    for problem in problems:
        print(f"build check failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
