"""Settings: the defaults a settings class holds in Python are the schema's.

The schema (config/schema/config.schema.yaml) documents and type-checks every key and fills
the defaults of a config the workflow or :func:`starclusters.config.load_config` reads; the
settings classes and dicts below hold the same defaults for library users who build settings
without a config. Both stay where they are (the schema lies outside the package, the classes
must not read it); this test keeps them equal.
"""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from conftest import REPO

from starclusters.analysis.settings import AnalysisSettings
from starclusters.artificial.settings import DrawSettings
from starclusters.baseline.settings import BaselineSettings
from starclusters.detect.arms import ArmsSettings
from starclusters.detect.settings import CatalogSettings, DetectSettings
from starclusters.mocks.settings import PSF_DEFAULTS, MockSettings, StarGroupSettings
from starclusters.model.evaluate import EvaluateSettings
from starclusters.model.settings import RUN_DEFAULTS, TrainSettings
from starclusters.model.spec import spec_defaults
from starclusters.photometry.settings import SUBSECTION_DEFAULTS, PhotometrySettings
from starclusters.scorecard.diagnose import DiagnosisSettings
from starclusters.synthetic.spec import SyntheticGalaxySpec

MISSING = object()


def schema_default(node: dict):
    """What the schema fills in for an absent key of ``node``: its default, with the
    defaults of its properties filled into an object (as validate(set_default=True))."""
    value = node.get("default", MISSING)
    if "properties" not in node or not (value is MISSING or isinstance(value, dict)):
        return value
    filled = {} if value is MISSING else dict(value)
    for key, child in node["properties"].items():
        default = schema_default(child)
        if default is not MISSING and key not in filled:
            filled[key] = default
    return filled if filled or value is not MISSING else MISSING


def defaults_of(cls) -> dict:
    """{field: default} of a settings dataclass (default factories called)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def plain(value):
    """Tuples as lists (YAML has no tuples), recursively."""
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def shared_differences(python: dict, schema: dict, key: str) -> list[str]:
    """``key.<name>: python != schema`` for every name both define with another value."""
    out = []
    for name in sorted(set(python) & set(schema)):
        mine, theirs = python[name], schema[name]
        if isinstance(mine, dict) and isinstance(theirs, dict):
            out += shared_differences(mine, theirs, f"{key}.{name}")
        elif plain(mine) != plain(theirs):
            out.append(f"{key}.{name}: Python {mine!r} != schema {theirs!r}")
    return out


#: (config section, its Python defaults, whether the schema gives some of them too).
PYTHON_DEFAULTS = [
    ("detect", defaults_of(DetectSettings), True),
    ("star_groups", defaults_of(StarGroupSettings), True),
    ("mocks", defaults_of(MockSettings), True),
    ("photometry", defaults_of(PhotometrySettings), True),
    *((f"photometry.{key}", value, True) for key, value in SUBSECTION_DEFAULTS.items()),
    ("artificial.draw", defaults_of(DrawSettings), True),
    ("detect", defaults_of(CatalogSettings), True),
    ("model", spec_defaults(), True),
    ("train", defaults_of(TrainSettings), False),  # the schema leaves them to the class
    ("train", RUN_DEFAULTS, True),
    ("psf", PSF_DEFAULTS, True),
    ("evaluate", defaults_of(EvaluateSettings), True),
    ("analysis", defaults_of(AnalysisSettings), True),
    ("arms", defaults_of(ArmsSettings), True),
    ("scorecard.diagnosis", defaults_of(DiagnosisSettings), True),
    ("baseline", defaults_of(BaselineSettings), False),
    ("mosaic.synthetic", defaults_of(SyntheticGalaxySpec), False),
]


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load((REPO / "config" / "schema" / "config.schema.yaml").read_text())


@pytest.mark.parametrize(
    ("key", "python", "overlaps"),
    PYTHON_DEFAULTS,
    ids=[f"{k}-{i}" for i, (k, *_) in enumerate(PYTHON_DEFAULTS)],
)
def test_python_defaults_are_the_schema_defaults(schema, key, python, overlaps):
    node = schema
    for part in key.split("."):
        node = node["properties"][part]
    filled = schema_default(node)
    filled = {} if filled is MISSING else filled
    assert shared_differences(python, filled, key) == []
    # a section whose defaults the schema repeats shares keys with the class (none renamed)
    assert bool(set(python) & set(filled)) == overlaps


def test_no_stage_imports_config():
    """config.py imports the stages' checks; no stage package imports config.py back (no
    import loop), and reading a config needs no torch."""
    import ast
    import subprocess
    import sys

    package = REPO / "src" / "starclusters"
    importers = []
    for path in sorted(package.glob("*/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if "starclusters.config" in names:
                importers.append(str(path.relative_to(package)))
    assert importers == []
    code = (
        "import sys; from starclusters.config import load_config; "
        f"load_config({str(REPO / 'config' / 'config.yaml')!r}); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_no_import_cycles_between_modules_or_stage_packages():
    """No module of the package imports itself back through others (function-level imports
    count too), and no two stage packages import each other: the layout reads one way."""
    import ast

    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    package = REPO / "src" / "starclusters"
    imports = {}
    for path in sorted(package.rglob("*.py")):
        name = ".".join(("starclusters", *path.relative_to(package).with_suffix("").parts))
        name = name.removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("starclusters"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("starclusters")}
        imports[name] = found
    names = sorted(imports)
    index = {n: i for i, n in enumerate(names)}
    edges = [(index[a], index[b]) for a in names for b in imports[a] if b in index and a != b]
    graph = csr_matrix(([1] * len(edges), tuple(zip(*edges, strict=True))), (len(names),) * 2)
    _, label = connected_components(graph, directed=True, connection="strong")
    cycles = [[n for n in names if label[index[n]] == k] for k in set(label)]
    assert [c for c in cycles if len(c) > 1] == []

    def stage(module):
        parts = module.split(".")
        return parts[1] if len(parts) > 2 else None  # modules of the package root: not a stage

    between = {(stage(a), stage(b)) for a in names for b in imports[a] if b in index}
    loops = sorted((a, b) for a, b in between if a and b and a < b and (b, a) in between)
    assert loops == []


#: Workflow scripts whose jobs load a network and may import torch when they start.
TORCH_SCRIPTS = {"detect_tile.py", "detection_gallery.py", "evaluate_model.py"}


def test_jobs_that_load_no_network_import_no_torch():
    """torch with torchvision takes ~4 s of a job's start (2-core VM): the artificial test's
    grid, injection, match and merge jobs, the plan and the analysis must not pay it. The
    modules every other script imports at its top, imported together, pull in no torch."""
    import ast
    import subprocess
    import sys

    modules = set()
    for path in sorted((REPO / "workflow" / "scripts").glob("*.py")):
        if path.name in TORCH_SCRIPTS:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module)
            elif isinstance(node, ast.Import):
                modules |= {a.name for a in node.names}
    code = (
        "import importlib, sys\n"
        f"for m in {sorted(modules)!r}:\n"
        "    importlib.import_module(m)\n"
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]", f"{sorted(modules)} import {out.stdout}"


@pytest.mark.parametrize("preset", [path.name for path in sorted((REPO / "config").glob("*.yaml"))])
def test_every_preset_passes_the_config_check(preset):
    """``python -m starclusters.config config/<preset>`` (what ``make run CONFIG=...`` runs
    first): each preset merged over the default passes the schema and every stage's check."""
    from starclusters.config import main

    assert main([str(REPO / "config" / preset)]) == 0
