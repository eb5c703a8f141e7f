import re
import tomllib

import yaml

from tests import ROOT


def test_environment_yml_lists_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    # what make setup installs (dev, fleet, vision), and what make lab adds
    wanted = set(project["dependencies"]) | set(extras["dev"]) | set(extras["fleet"]) | set(extras["vision"]) | \
        set(extras["lab"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {d for d in pip if not d.startswith("-e")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"
    assert "python=3.11" in env["dependencies"]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()  # PEP 503


def test_the_lock_pins_what_make_setup_installs_with_hashes_and_satisfies_pyproject():
    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = [Requirement(r) for r in [*project["dependencies"], *extras["dev"], *extras["fleet"], *extras["vision"]]]
    pins, hashed = {}, set()
    text = (ROOT / "requirements.lock").read_text()
    for entry in text.replace("\\\n", " ").splitlines():
        if "==" in entry and not entry.startswith("#"):
            name, rest = entry.split("==", 1)
            version = rest.split()[0]
            pins[normalized(name)] = Version(version)
            if "--hash=sha256:" in rest:
                hashed.add(normalized(name))
    assert pins and set(pins) == hashed, f"pinned without a hash: {set(pins) - hashed}"
    # torch's build (CPU here, CUDA elsewhere) brings its own CUDA stack: none of it may be locked
    assert not [n for n in pins if n.startswith(("nvidia-", "cuda-")) or n == "triton"]
    for req in wanted:
        name = normalized(req.name)
        if name == "torch":  # installed first from TORCH_SPEC (a CPU or CUDA build: different hashes)
            assert name not in pins
            continue
        assert name in pins, f"{req} is not in requirements.lock: run bash scripts/update_lock.sh"
        assert req.specifier.contains(pins[name], prereleases=True), f"the lock's {name} {pins[name]} is not {req}"
