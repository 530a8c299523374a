"""Packaging: environment.yml lists the same dependencies as setup.cfg, and the entry points exist."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIP_NAME = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$")


def requirement(line: str) -> tuple[str, str]:
    match = PIP_NAME.match(line.strip())
    assert match, line
    name = match.group(1).lower().replace("_", "-")
    return name, match.group(3).replace(" ", "")


def setup_cfg_requirements() -> dict[str, str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].split("\n")
    lines += config["options.extras_require"]["test"].split("\n")
    return dict(requirement(line) for line in lines if line.strip())


def environment_requirements() -> dict[str, str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    entries = []
    for dependency in environment["dependencies"]:
        if isinstance(dependency, dict):
            entries += [item for item in dependency["pip"] if not item.startswith("-")]
        elif dependency != "pip" and not dependency.startswith("python"):
            entries.append(dependency)
    return dict(requirement(entry) for entry in entries)


def test_environment_matches_setup_cfg() -> None:
    assert environment_requirements() == setup_cfg_requirements()


def test_console_scripts_declared() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    entry_points = config["options.entry_points"]

    assert "audiobook = audiobook.cli:main" in entry_points["console_scripts"]
    assert "audiobook = audiobook.cli:main" in entry_points["dask_cli"]


def test_ci_runs_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()

    assert "python3 quickstart.py test" in readme
    assert "python3 quickstart.py test" in ci
