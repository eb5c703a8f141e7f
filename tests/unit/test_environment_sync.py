import tomllib

import yaml

from tests import ROOT


def test_environment_yml_lists_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    # what make setup installs (dev, fleet), and what make lab adds
    wanted = set(project["dependencies"]) | set(extras["dev"]) | set(extras["fleet"]) | set(extras["lab"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {d for d in pip if not d.startswith("-e")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"
    assert "python=3.11" in env["dependencies"]
