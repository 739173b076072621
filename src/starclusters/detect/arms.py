"""Spiral arms: signed distance from the nearest dust lane and arm membership (thesis §4.2.3, §4.3.3).

The thesis "traced out dust lanes along the inner part of the arms" and measured each
cluster's "shortest-line distance" from them (Fig. 4.7): negative distances trail the
arms, positive ones lead them ("clusters leaving and outpacing the arms"). Its recall maps
(Fig. 4.3) split the galaxy into the regions on and off the arms, outlined by hand.

Here everything happens in the deprojected disk plane of
:class:`~starclusters.detect.catalog.DiskGeometry` (x along the major axis towards PA, y
towards PA − 90°, kpc), the frame of the synthetic galaxy's
``GalaxyGeometry.sky_to_disk``:

* **lanes** are polylines (points in order along each lane). The distance of a point is
  the exact Euclidean distance to the nearest lane segment — not the first-order
  R sin(pitch) Δφ of the synthetic generator, which is ~2 % short 0.2 R from a lane.
* **sign**: positive on the lane's *leading* side, the side the disk rotates towards
  (for the synthetic galaxy, increasing disk azimuth: clockwise on a north-up, east-left
  image). Inside corotation stars overtake the pattern, so this is where clusters born on
  the lane drift ("downstream"); the convention is the truth's ``arm_distance_kpc``
  (:meth:`~starclusters.synthetic.geometry.GalaxyGeometry.arm_coordinates`) and
  the thesis' Fig. 4.7, and it does not flip beyond corotation.
* **on the arm**: inside one of the user's arm polygons when given; otherwise within the
  arm band around a lane, from ``trailing_kpc`` upstream of it to ``leading_kpc``
  downstream (downstream = the leading side inside corotation, the trailing side beyond
  it, as the synthetic galaxy's ``on_arm``), where the point's nearest lane point lies
  along the lane rather than beyond one of its ends.

Sources (the ``arms`` config section, :meth:`ArmGeometry.from_config`): ``synthetic`` —
the synthetic galaxy's ``mosaic/arms.parquet`` lanes with the geometry in its metadata
(centre, inclination, PA, model kpc per arcsec, corotation, arm band); ``files`` — the
user's lane polylines (and optionally arm polygons) in RA/Dec, with the disk of the
``galaxy_geometry`` section; ``none`` — no arms.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from starclusters.detect.catalog import DiskGeometry
from starclusters.errors import ConfigError, InputFileError
from starclusters.sections import dataclass_from_config, is_number

#: Config key of the section :meth:`ArmGeometry.from_config` reads.
CONFIG_KEY = "arms"
#: Sense of rotation on a north-up, east-left image -> sign of the disk-azimuth rotation.
ROTATION_SIGN = {"clockwise": 1, "counterclockwise": -1}
#: The synthetic galaxy's arm band when its metadata lacks it, kpc (synthetic.spec defaults).
SYNTHETIC_BAND_KPC = {"arm_trailing_kpc": 0.1, "arm_leading_kpc": 0.4}
#: Values of ``arms.source``.
SOURCES = ("synthetic", "files", "none")
#: Points per chunk of the point-to-segment distances (memory: chunk × segments × 5 floats).
CHUNK_POINTS = 2048
#: Disk-frame keys of the synthetic geometry metadata that :class:`DiskGeometry` needs.
_DISK_KEYS = (
    "centre_ra_deg",
    "centre_dec_deg",
    "inclination_deg",
    "position_angle_deg",
    "kpc_per_arcsec",
)


def _polylines(table: pd.DataFrame, group: str, what: str) -> list[tuple[object, pd.DataFrame]]:
    """The rows of ``table`` grouped by ``group`` (in their order), each with ra_deg, dec_deg."""
    missing = [c for c in (group, "ra_deg", "dec_deg") if c not in table.columns]
    if missing:
        raise InputFileError(
            f"{what}: columns {missing} missing; give one row per point with {group}, "
            "ra_deg, dec_deg, in order along each line"
        )
    return [(key, rows) for key, rows in table.groupby(group, sort=False)]


def read_points_table(path: str | os.PathLike, group: str) -> pd.DataFrame:
    """A CSV or Parquet table of points (``group``, ra_deg, dec_deg), or DS9 polygons (.reg).

    DS9 files give one polygon per shape (sky coordinates), numbered in file order.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file; check the arms section of the config")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        from starclusters.io import read_table

        return read_table(path)
    if suffix == ".reg":
        from regions import PolygonSkyRegion, Regions

        rows = []
        for k, shape in enumerate(Regions.read(str(path), format="ds9")):
            if not isinstance(shape, PolygonSkyRegion):
                raise InputFileError(
                    f"{path}: shape {k} is a {type(shape).__name__}; only sky polygons are read"
                )
            icrs = shape.vertices.icrs
            rows.append(pd.DataFrame({group: k, "ra_deg": icrs.ra.deg, "dec_deg": icrs.dec.deg}))
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    try:
        return pd.read_csv(path, comment="#")
    except (OSError, ValueError) as err:
        raise InputFileError(f"{path}: cannot read it as CSV ({err})") from err


@dataclass(frozen=True)
class ArmsSettings:
    """The ``arms`` config section (keys = field names): where the spiral arms' dust lanes
    come from and how the arm band is measured.

    source: "synthetic" (the synthetic galaxy's own lanes), "files" (the user's) or "none";
    lanes_file: the lanes (arm, ra_deg, dec_deg per point, in order; CSV, Parquet or DS9
    polygons) for source files; regions_file: optional arm polygons (region, ra_deg,
    dec_deg); rotation: the disk's sense of rotation on a north-up, east-left image,
    "clockwise" or "counterclockwise"; corotation_radius_kpc: beyond it the lanes trail
    the other way (None: no corotation); trailing_kpc, leading_kpc: the arm band's width
    behind and ahead of a lane, kpc, ≥ 0. The last four apply to source files (the
    synthetic galaxy brings its own). Invalid values raise ConfigError naming
    ``arms.<key>``.
    """

    source: str = "none"
    lanes_file: str | None = None
    regions_file: str | None = None
    rotation: str = "clockwise"
    corotation_radius_kpc: float | None = None
    trailing_kpc: float = 0.1
    leading_kpc: float = 0.4

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{CONFIG_KEY}.{key}: {why}, got {getattr(self, key)!r}")

        if self.source not in SOURCES:
            bad("source", f"must be one of {', '.join(SOURCES)}")
        if self.rotation not in ROTATION_SIGN:
            bad("rotation", "must be 'clockwise' or 'counterclockwise'")
        for key in ("trailing_kpc", "leading_kpc"):
            if not is_number(getattr(self, key)) or not getattr(self, key) >= 0:
                bad(key, "must be a number ≥ 0 (kpc)")
        corotation = self.corotation_radius_kpc
        if corotation is not None and (not is_number(corotation) or not corotation > 0):
            bad("corotation_radius_kpc", "must be a number > 0 (kpc) or absent")
        for key in ("lanes_file", "regions_file"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                bad(key, "must be a path")

    @classmethod
    def from_config(cls, section: Mapping | None = None) -> ArmsSettings:
        """Settings from an ``arms`` mapping (absent keys: defaults; unknown ones: fail)."""
        return dataclass_from_config(cls, section, CONFIG_KEY)


@dataclass(frozen=True)
class ArmGeometry:
    """Dust lanes (and optionally arm polygons) of a disk galaxy.

    disk: the deprojection (sky -> disk-plane kpc); lanes: one (n_i, 2) float64 array of
    disk-plane points (x, y) kpc per lane, in order along it (n_i ≥ 2); rotation_sign: +1
    when the disk rotates towards increasing azimuth atan2(y, x) of that frame (clockwise
    on a north-up, east-left image), −1 otherwise; corotation_radius_kpc: beyond it
    "downstream" is the trailing side (inf: everywhere inside corotation);
    trailing_kpc, leading_kpc: the arm band around a lane (≥ 0); regions: (m_j, 2) disk-plane
    polygons of the arm regions, which replace the band when given; source: where it came
    from (for metadata).
    """

    disk: DiskGeometry
    lanes: tuple[np.ndarray, ...]
    rotation_sign: int = 1
    corotation_radius_kpc: float = math.inf
    trailing_kpc: float = 0.1
    leading_kpc: float = 0.4
    regions: tuple[np.ndarray, ...] = field(default=())
    source: str = "files"

    def __post_init__(self):
        lanes = tuple(np.asarray(lane, np.float64).reshape(-1, 2) for lane in self.lanes)
        if not lanes:
            raise ConfigError(f"{CONFIG_KEY}: no dust lane given; give at least one polyline")
        for k, lane in enumerate(lanes):
            if len(lane) < 2 or not np.isfinite(lane).all():
                raise ConfigError(
                    f"{CONFIG_KEY}: lane {k} has {len(lane)} finite points; a lane needs ≥ 2"
                )
        object.__setattr__(self, "lanes", lanes)
        regions = tuple(np.asarray(poly, np.float64).reshape(-1, 2) for poly in self.regions)
        for k, poly in enumerate(regions):
            if len(poly) < 3:
                raise ConfigError(f"{CONFIG_KEY}: arm polygon {k} has {len(poly)} points, need ≥ 3")
        object.__setattr__(self, "regions", regions)
        if self.rotation_sign not in (1, -1):
            raise ValueError(f"rotation_sign must be +1 or -1, got {self.rotation_sign}")
        if not (self.trailing_kpc >= 0 and self.leading_kpc >= 0):
            raise ConfigError(
                f"{CONFIG_KEY}.trailing_kpc, leading_kpc: must be ≥ 0, got "
                f"{self.trailing_kpc}, {self.leading_kpc}"
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(
        cls,
        config_section: Mapping | None,
        arms_table: pd.DataFrame | None = None,
        synthetic_meta: Mapping | None = None,
        *,
        disk: DiskGeometry | None = None,
    ) -> ArmGeometry | None:
        """The arms of the ``arms`` config section; None for ``source: none``.

        config_section: ``{source: synthetic}`` — lanes from ``arms_table`` (the synthetic
        galaxy's ``mosaic/arms.parquet``: arm, ra_deg, dec_deg) and disk, rotation,
        corotation and arm band from ``synthetic_meta`` (its "geometry" metadata, see
        :func:`starclusters.detect.candidates_stage.synthetic_geometry_meta`);
        ``{source: files, lanes_file, regions_file?, rotation, corotation_radius_kpc?,
        trailing_kpc?, leading_kpc?}`` — lanes from ``arms_table`` or else ``lanes_file``
        (arm, ra_deg, dec_deg per point, in order), arm polygons from ``regions_file``
        (region, ra_deg, dec_deg, or DS9 sky polygons), and ``disk``: the galaxy's
        deprojection (:func:`~starclusters.detect.catalog.geometry_from_config` of the
        ``galaxy_geometry`` section). ConfigError naming the key when something is missing.
        """
        settings = ArmsSettings.from_config(config_section)
        source = settings.source
        if source == "none":
            return None
        if source == "synthetic":
            if arms_table is None or synthetic_meta is None:
                raise ConfigError(
                    f"{CONFIG_KEY}.source: 'synthetic' needs the synthetic galaxy's "
                    "mosaic/arms.parquet and its geometry metadata (mosaic.source: synthetic)"
                )
            missing = [k for k in _DISK_KEYS if k not in synthetic_meta]
            if missing:
                raise InputFileError(
                    f"the synthetic galaxy's geometry metadata lacks {missing}; rerun the "
                    "mosaic stage"
                )
            disk = DiskGeometry(*(float(synthetic_meta[k]) for k in _DISK_KEYS))
            lanes = _polylines(arms_table, "arm", "mosaic/arms.parquet")
            band = {k: float(synthetic_meta.get(k, v)) for k, v in SYNTHETIC_BAND_KPC.items()}
            return cls(
                disk=disk,
                lanes=tuple(_to_disk(disk, rows) for _, rows in lanes),
                rotation_sign=1,  # the generator's disk turns towards increasing azimuth
                corotation_radius_kpc=float(synthetic_meta.get("corotation_radius_kpc", math.inf)),
                trailing_kpc=band["arm_trailing_kpc"],
                leading_kpc=band["arm_leading_kpc"],
                source="synthetic",
            )
        if disk is None:
            raise ConfigError(
                f"{CONFIG_KEY}.source: 'files' needs the galaxy's disk; set galaxy_geometry "
                "(source: config with centre_ra_deg, centre_dec_deg, inclination_deg, "
                "position_angle_deg)"
            )
        if arms_table is None:
            if not settings.lanes_file:
                raise ConfigError(f"{CONFIG_KEY}.lanes_file: missing (needed with source: files)")
            arms_table = read_points_table(settings.lanes_file, "arm")
        what = str(settings.lanes_file or "arms table")
        lanes = tuple(_to_disk(disk, rows) for _, rows in _polylines(arms_table, "arm", what))
        regions = ()
        if settings.regions_file:
            table = read_points_table(settings.regions_file, "region")
            polys = _polylines(table, "region", settings.regions_file)
            regions = tuple(_to_disk(disk, rows) for _, rows in polys)
        corotation = settings.corotation_radius_kpc
        return cls(
            disk=disk,
            lanes=lanes,
            rotation_sign=ROTATION_SIGN[settings.rotation],
            corotation_radius_kpc=math.inf if corotation is None else float(corotation),
            trailing_kpc=float(settings.trailing_kpc),
            leading_kpc=float(settings.leading_kpc),
            regions=regions,
            source="files",
        )

    # ------------------------------------------------------------------ geometry
    def lane_coordinates(self, ra_deg, dec_deg) -> dict[str, np.ndarray]:
        """Where points lie relative to the lanes, each (N,):

        distance_kpc: signed distance from the nearest lane, disk plane, positive on the
        leading side (see the module docstring); arm: index of that lane (int); along_lane:
        the nearest lane point is not beyond one of the lane's ends; radius_kpc: deprojected
        galactocentric radius. NaN distance (arm −1) for non-finite positions.
        """
        x, y = self.disk.disk_kpc(ra_deg, dec_deg)
        points = np.stack([np.ravel(x), np.ravel(y)], axis=1)
        n = len(points)
        best = np.full(n, np.inf)
        signed = np.full(n, np.nan)
        arm = np.full(n, -1, np.int64)
        along = np.zeros(n, bool)
        finite = np.isfinite(points).all(axis=1)
        for k, lane in enumerate(self.lanes):
            d, s, inside = _polyline_distance(points, lane, self.rotation_sign)
            closer = finite & (d < best)
            best[closer], signed[closer], along[closer], arm[closer] = (
                d[closer],
                s[closer],
                inside[closer],
                k,
            )
        return {
            "distance_kpc": signed,
            "arm": arm,
            "along_lane": along,
            "radius_kpc": np.hypot(points[:, 0], points[:, 1]),
        }

    def signed_distance_kpc(self, ra_deg, dec_deg) -> np.ndarray:
        """(N,) distance from the nearest dust lane in the disk plane, kpc, positive on the
        leading (downstream inside corotation) side; NaN for non-finite positions."""
        return self.lane_coordinates(ra_deg, dec_deg)["distance_kpc"]

    def on_arm(self, ra_deg, dec_deg) -> np.ndarray:
        """(N,) bool: inside an arm polygon, or (without polygons) within the arm band
        [−trailing_kpc, +leading_kpc] downstream of a lane, along the lane."""
        if self.regions:
            from matplotlib.path import Path as PolygonPath

            x, y = self.disk.disk_kpc(ra_deg, dec_deg)
            points = np.stack([np.ravel(x), np.ravel(y)], axis=1)
            inside = np.zeros(len(points), bool)
            finite = np.isfinite(points).all(axis=1)
            for poly in self.regions:
                inside[finite] |= PolygonPath(poly).contains_points(points[finite])
            return inside
        c = self.lane_coordinates(ra_deg, dec_deg)
        downstream = c["distance_kpc"] * np.where(
            c["radius_kpc"] <= self.corotation_radius_kpc, 1.0, -1.0
        )
        with np.errstate(invalid="ignore"):
            band = (downstream >= -self.trailing_kpc) & (downstream <= self.leading_kpc)
        return band & c["along_lane"]

    def to_dict(self) -> dict:
        """JSON-able description (for Parquet metadata)."""
        return {
            "source": self.source,
            "disk": self.disk.to_dict(),
            "n_lanes": len(self.lanes),
            "n_regions": len(self.regions),
            "rotation_sign": self.rotation_sign,
            "corotation_radius_kpc": self.corotation_radius_kpc,
            "trailing_kpc": self.trailing_kpc,
            "leading_kpc": self.leading_kpc,
            "distance": "shortest distance to a dust-lane polyline in the deprojected disk, "
            "kpc, positive on the leading side (the side the disk rotates towards)",
            "on_arm": "inside an arm polygon"
            if self.regions
            else "within [-trailing_kpc, +leading_kpc] downstream of a lane, along it",
        }


def _to_disk(disk: DiskGeometry, rows: pd.DataFrame) -> np.ndarray:
    """(n, 2) disk-plane kpc of the rows' ra_deg, dec_deg."""
    x, y = disk.disk_kpc(rows["ra_deg"].to_numpy(float), rows["dec_deg"].to_numpy(float))
    return np.stack([np.atleast_1d(x), np.atleast_1d(y)], axis=1)


def _polyline_distance(
    points: np.ndarray, lane: np.ndarray, rotation_sign: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distance ≥ 0, signed distance, along) of points (N, 2) from one polyline (n, 2), kpc.

    The nearest segment's foot q; the side is the sign of tangent × (p − q) (z of the
    cross product), and it is "leading" when the rotation direction at q,
    rotation_sign · (−q_y, q_x), lies on the same side of the tangent. ``along``: the
    foot is not clamped at the polyline's first or last point.
    """
    a, b = lane[:-1], lane[1:]
    ab = b - a
    length2 = np.maximum((ab**2).sum(axis=1), 1e-300)
    n, m = len(points), len(a)
    distance = np.full(n, np.inf)
    signed = np.full(n, np.nan)
    along = np.zeros(n, bool)
    for start in range(0, n, CHUNK_POINTS):
        p = points[start : start + CHUNK_POINTS]
        ap = p[:, None, :] - a[None]  # (n, m, 2)
        t_raw = (ap * ab[None]).sum(axis=2) / length2[None]
        t = np.clip(t_raw, 0.0, 1.0)
        offset = ap - t[..., None] * ab[None]  # p − foot
        d2 = (offset**2).sum(axis=2)
        d2 = np.where(np.isfinite(d2), d2, np.inf)
        k = np.argmin(d2, axis=1)
        rows = np.arange(len(p))
        off, seg = offset[rows, k], ab[k]
        foot = p - off
        side = np.sign(seg[:, 0] * off[:, 1] - seg[:, 1] * off[:, 0])
        rotation = rotation_sign * np.stack([-foot[:, 1], foot[:, 0]], axis=1)
        lead = np.sign(seg[:, 0] * rotation[:, 1] - seg[:, 1] * rotation[:, 0])
        d = np.sqrt(d2[rows, k])
        chunk = slice(start, start + len(p))
        distance[chunk] = d
        signed[chunk] = np.where(np.isfinite(d), d * side * lead, np.nan)
        tk = t_raw[rows, k]
        along[chunk] = ~(((k == 0) & (tk < 0)) | ((k == m - 1) & (tk > 1)))
    return distance, signed, along


def arm_columns(arms: ArmGeometry | None, ra_deg, dec_deg) -> dict[str, np.ndarray]:
    """on_arm (bool) and arm_distance_kpc of positions; False / NaN without arms."""
    ra = np.atleast_1d(np.asarray(ra_deg, float))
    if arms is None:
        return {"on_arm": np.zeros(ra.shape, bool), "arm_distance_kpc": np.full(ra.shape, np.nan)}
    return {
        "on_arm": arms.on_arm(ra, dec_deg),
        "arm_distance_kpc": arms.signed_distance_kpc(ra, dec_deg),
    }


def arms_from_files(
    section: Mapping | None,
    geometry: Mapping | None,
    distance_mpc: float,
    arms_path: str | os.PathLike | None = None,
) -> ArmGeometry | None:
    """:meth:`ArmGeometry.from_config` from the pipeline's files and config sections.

    section: the ``arms`` config section; geometry: the ``galaxy_geometry`` section (the
    disk for source files); arms_path: the synthetic galaxy's ``mosaic/arms.parquet``.
    """
    from starclusters.detect.candidates_stage import synthetic_geometry_meta
    from starclusters.detect.catalog import geometry_from_config
    from starclusters.io import read_table

    section = dict(section or {})
    source = section.get("source", "none")
    if source == "none":
        return None
    if source == "synthetic":
        if arms_path is None:
            raise ConfigError(
                f"{CONFIG_KEY}.source: 'synthetic' needs mosaic.source: synthetic (the "
                "synthetic galaxy's mosaic/arms.parquet); give lanes with source: files"
            )
        return ArmGeometry.from_config(
            section, read_table(arms_path), synthetic_geometry_meta(arms_path)
        )
    geometry = dict(geometry or {})
    if geometry.get("source") != "config":
        raise ConfigError(
            f"{CONFIG_KEY}.source: 'files' needs galaxy_geometry.source: config (the disk the "
            "lanes are deprojected with)"
        )
    disk = geometry_from_config(geometry, distance_mpc)
    return ArmGeometry.from_config(section, disk=disk)


def arms_section(config: Mapping) -> Mapping:
    """The ``arms`` section a run uses: the config's, or without one the synthetic galaxy's
    own lanes (mosaic.source: synthetic) or none."""
    default = {"source": "synthetic" if config["mosaic"]["source"] == "synthetic" else "none"}
    return config.get(CONFIG_KEY) or default


def check_arms_config(config: Mapping) -> None:
    """Checks of the ``arms`` section (:func:`arms_section`) that the schema cannot express
    (ConfigError names the key): :class:`ArmsSettings`; source synthetic only with the
    synthetic galaxy; source files with a lanes_file that exists (and a regions_file, if
    given, too) and galaxy_geometry.source: config."""
    settings = ArmsSettings.from_config(arms_section(config))
    source = settings.source
    if source == "synthetic" and config["mosaic"]["source"] != "synthetic":
        raise ConfigError(
            f"{CONFIG_KEY}.source: 'synthetic' needs mosaic.source: synthetic; give the "
            "dust lanes with source: files (lanes_file) or use source: none"
        )
    if source != "files":
        return
    if not settings.lanes_file:
        raise ConfigError(f"{CONFIG_KEY}.lanes_file: missing (needed with source: files)")
    for key in ("lanes_file", "regions_file"):
        path = getattr(settings, key)
        if path and not Path(path).exists():
            raise ConfigError(f"{CONFIG_KEY}.{key}: {path} does not exist")
    if (config.get("galaxy_geometry") or {}).get("source") != "config":
        raise ConfigError(
            f"{CONFIG_KEY}.source: 'files' needs galaxy_geometry.source: config (the disk "
            "the lanes are deprojected with)"
        )
