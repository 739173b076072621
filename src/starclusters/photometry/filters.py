"""Filter transmission curves, by the names the config uses (``photometry.filter_curves``).

One place resolves a curve name such as ``HST_WFC3_F814W`` to a ``pyphot.Filter``
(wavelength in Angstrom, photon-counting throughput) for every synthetic-photometry
and extinction integral of the project. The HST curves must be *total system*
throughputs (telescope, instrument optics, filter and detector quantum
efficiency): a filter-only curve misses the detector's fall-off and puts the
band's pivot in the wrong place. pyphot's ``HST_WFC3_F814W``, for example, is the
filter alone, with its pivot at 8307 Å, 268 Å red of the WFC3/UVIS F814W system
pivot (8039 Å): red stars come out too bright in F814W and A_F814W/A_V too small.

Each HST name in :data:`CURVES` is mapped to a curve whose pivot matches the
handbook's (tests/test_filters.py checks every one within 10 Å):

* ``sedpy``: the total-throughput curves shipped by the PyPI package
  ``astro-sedpy`` (``sedpy/data/filters/<key>.par``: wavelength in Angstrom and
  detector signal per photon; read as data, sedpy's code is not used);
* ``resources``: curves shipped in the repository's ``resources/filters/<key>.dat``
  (same format; their README names the source of each);
* ``pyphot``: pyphot's own library curve.

Any other name (the ground-based anchor bands ``GROUND_JOHNSON_U``, ``SDSS_u``…,
WFC3/IR curves) is looked up in pyphot's library as before. docs/photometry.md
lists every curve's source and pivot.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from starclusters.errors import ConfigError

#: The repository's shipped filter curves (see the README there).
RESOURCE_DIR = Path(__file__).resolve().parents[3] / "resources" / "filters"


@dataclass(frozen=True)
class CurveSource:
    """Where the curve of a configured name comes from.

    source: ``"sedpy"`` (astro-sedpy's ``data/filters/<key>.par``), ``"resources"``
    (``resources/filters/<key>.dat``) or ``"pyphot"`` (pyphot's library curve
    ``key``); pivot_aa: that curve's pivot, Angstrom, as measured (documentation;
    tests/test_filters.py keeps it true).
    """

    source: str
    key: str
    pivot_aa: float


#: HST curve names a configured band may use, with the curve each one resolves to.
#: Handbook pivots are in tests/test_filters.py; pyphot's own curve of the same name
#: is noted where it was replaced.
CURVES: dict[str, CurveSource] = {
    # pyphot: filter only, pivot 2341.7
    "HST_WFC3_F225W": CurveSource("sedpy", "wfc3_uvis_f225w", 2372.7),
    # pyphot: 2716.9
    "HST_WFC3_F275W": CurveSource("sedpy", "wfc3_uvis_f275w", 2710.2),
    # pyphot: 3362.1
    "HST_WFC3_F336W": CurveSource("sedpy", "wfc3_uvis_f336w", 3354.8),
    # pyphot: filter only, 4319.9; astro-sedpy has no F438W
    "HST_WFC3_F438W": CurveSource("resources", "hst_wfc3_uvis_f438w", 4325.4),
    # pyphot: 4762.0
    "HST_WFC3_F475W": CurveSource("sedpy", "wfc3_uvis_f475w", 4773.7),
    # pyphot: 5311.4
    "HST_WFC3_F555W": CurveSource("sedpy", "wfc3_uvis_f555w", 5308.1),
    # pyphot: 5908.7
    "HST_WFC3_F606W": CurveSource("sedpy", "wfc3_uvis_f606w", 5887.4),
    # pyphot: filter only, 8307.0
    "HST_WFC3_F814W": CurveSource("sedpy", "wfc3_uvis_f814w", 8029.5),
    # pyphot (Sirianni et al. 2005 throughputs): 4317.4
    "HST_ACS_WFC_F435W": CurveSource("sedpy", "acs_wfc_f435w", 4327.2),
    # pyphot: 4744.4
    "HST_ACS_WFC_F475W": CurveSource("sedpy", "acs_wfc_f475w", 4745.3),
    # pyphot: 5359.6
    "HST_ACS_WFC_F555W": CurveSource("sedpy", "acs_wfc_f555w", 5360.2),
    # pyphot: 5917.7
    "HST_ACS_WFC_F606W": CurveSource("sedpy", "acs_wfc_f606w", 5919.4),
    # pyphot 8059.8 and astro-sedpy 8059.9 are both 14 A red of the current calibration
    "HST_ACS_WFC_F814W": CurveSource("resources", "hst_acs_wfc_f814w", 8046.5),
}

#: HST filter curves that a configured band may use (``photometry.filter_curves``).
HST_FILTER_CURVES = tuple(CURVES)


@cache
def _pyphot_library():
    from pyphot import get_library

    return get_library()


def _two_columns(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Wavelength and throughput from text with ``#`` comments and two numeric columns.

    Also reads sedpy's yanny tables (``KFILTER_PASSBAND <lambda> <pass>`` rows).
    """
    rows = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields[:1] == ["KFILTER_PASSBAND"]:
            fields = fields[1:]
        if len(fields) < 2:
            continue
        try:
            rows.append((float(fields[0]), float(fields[1])))
        except ValueError:
            continue  # yanny headers (typedef, struct members)
    table = np.array(rows)
    order = np.argsort(table[:, 0], kind="stable")
    return table[order, 0], table[order, 1]


def read_curve(source: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Wavelength (Angstrom) and throughput of curve ``key`` of ``source`` (``sedpy`` or
    ``resources``); ConfigError naming what to install if the file is missing."""
    try:
        if source == "sedpy":
            text = resources.files("sedpy").joinpath("data", "filters", f"{key}.par").read_text()
        elif source == "resources":
            text = (RESOURCE_DIR / f"{key}.dat").read_text()
        else:
            raise ValueError(f"unknown filter-curve source {source!r}")
    except (ModuleNotFoundError, FileNotFoundError) as err:
        remedy = (
            "install the project's dependencies (pip install -e .) to get astro-sedpy==0.4.1"
            if source == "sedpy"
            else f"run from a checkout of the repository, which ships {RESOURCE_DIR}"
        )
        raise ConfigError(f"filter curve {key!r} is not available ({err}); {remedy}") from err
    return _two_columns(text)


@cache
def filter_curve(name: str):
    """The ``pyphot.Filter`` of curve ``name`` (e.g. ``HST_WFC3_F336W``); ConfigError if unknown.

    HST names of :data:`CURVES` resolve to their chosen source; any other name to
    pyphot's library curve of that name. The returned object is shared: do not modify it.
    """
    from pyphot import Filter

    choice = CURVES.get(name)
    if choice is not None and choice.source != "pyphot":
        wavelength, throughput = read_curve(choice.source, choice.key)
        return Filter(wavelength, throughput, name=name, dtype="photon", unit="AA")
    key = choice.key if choice is not None else name
    lib = _pyphot_library()
    if key not in lib.get_library_content():
        raise ConfigError(
            f"filter curve {name!r} is not in pyphot's library; "
            f"choose one of {', '.join(HST_FILTER_CURVES)}"
        )
    return lib[key]


def pivot_wavelength_aa(name: str) -> float:
    """Pivot wavelength of curve ``name``, Angstrom (photon-counting definition)."""
    return float(filter_curve(name).lpivot.to("AA").value)


def describe(name: str) -> str:
    """Where curve ``name`` comes from and its pivot, for table metadata and logs."""
    choice = CURVES.get(name)
    if choice is None or choice.source == "pyphot":
        origin = f"pyphot library {choice.key if choice else name}"
    elif choice.source == "sedpy":
        origin = f"astro-sedpy {choice.key}.par (total system throughput)"
    else:
        origin = f"resources/filters/{choice.key}.dat (total system throughput)"
    return f"{name}: {origin}, pivot {pivot_wavelength_aa(name):.1f} A"
