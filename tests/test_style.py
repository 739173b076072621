"""Formatting and lint stay clean (ruff for Python, snakefmt for the workflow)."""

import shutil
import subprocess
import sys

import pytest
from conftest import REPO

PYTHON_PATHS = ["src", "tests", "workflow", "benchmarks", "docs"]


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)


def tool(name):
    path = shutil.which(name, path=str(REPO / ".venv" / "bin")) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run `make test`, which installs the dev extras")
    return path


def test_ruff_check():
    result = run(sys.executable, "-m", "ruff", "check", *PYTHON_PATHS)
    assert result.returncode == 0, result.stdout


def test_ruff_format():
    result = run(sys.executable, "-m", "ruff", "format", "--check", *PYTHON_PATHS)
    assert result.returncode == 0, result.stdout


def test_snakefmt():
    result = run(tool("snakefmt"), "--check", "Snakefile", "workflow/rules")
    assert result.returncode == 0, result.stdout + result.stderr
