"""Why the network misses clusters, and what its false candidates are (issue 13).

For one scored galaxy (a truth to score against): every truth cluster gets one ``reason``
and every candidate matched to no truth cluster one ``kind`` — the first of a fixed list
that applies — with the numbers that decided it. Positions are 0-based pixels of the
mosaic grid (x column, y row, pixel centres at integers): the truth's x_px, y_px, the
catalogs' x, y and the contaminants' x_px, y_px once put on that grid from their RA, Dec
(:func:`on_grid`); a position's pixel is the one whose centre is nearest. r is the
scorer's match radius (``scorecard.match_radius_px``, thesis 3 px) and every match the
project's one positional match (:func:`starclusters.detect.matching.match_positions`:
one to one, closest pair first). Settings: :class:`DiagnosisSettings`.

**Miss reasons** (:func:`miss_reasons`). A cluster matched to a candidate within r is
``detected`` (exactly the scorecard's match). Its *peak* is the peak (local maximum of
the smoothed class map, any class) that the one-to-one match of the truth to all peaks
within r gives it, or else — when no peak at all lies within r — its nearest peak if
that lies within ``offset_factor`` × r (an off-centre peak). A missed cluster gets the
first of:

1. ``masked`` — the mosaic mask is set at its pixel: nothing there is searched.
2. ``edge`` — the class map is NaN at its pixel (or the pixel is off the map): the
   network's window around it is incomplete, within window_px // 2 of the mosaic's
   border or of a blank area.
3. ``blended`` — a neighbour has the peak it would have had: (i) peaks lie within r but
   the truth-to-peaks match gave each to another truth cluster; or (ii) no peak lies
   within r and its nearest peak, within ``blend_radius_px``, is nearer to another truth
   cluster or a contaminant (OB association, background galaxy, foreground star, the
   nucleus) whose centre lies within ``blend_radius_px`` of the cluster — the smoothed
   class map keeps one maximum for both; or (iii) its peak is a candidate matched to
   another truth cluster, or paired with another missed cluster as its offset candidate.
   The neighbour need not be the brighter one: where the one maximum lands decides, and
   the class map's response is no measure of brightness.
4. ``offset`` — no peak within r, and the one-to-one match of such clusters to the
   candidates matched to no truth cluster, within ``offset_factor`` × r, pairs it with
   one: the network found it, in the wrong place.
5. ``no_peak`` — no peak of its own (none within r, none within offset_factor × r).
6. ``class_below`` — its peak's class (p_cluster at the peak) ≤ ``class_threshold``.
7. ``visibility_below`` — its peak's class passes, its (weighted) visibility ≤
   ``visibility_threshold`` (or NaN).
8. ``other`` — none of these. On consistent inputs it cannot happen: a peak of its own
   that passes both thresholds is a candidate, matched to this cluster, to another one
   (iii) or free (then within offset_factor × r: paired as an offset, or lost to another
   cluster's pairing, iii). It flags a truth cluster without a position, or peaks and
   candidates that do not belong together (another run, other thresholds).

The order: what no detector could find first (1, 2); then blending, because without a
peak of its own no threshold would help; then an offset candidate before ``no_peak``,
because a free candidate within 2r of a cluster without a peak within r is most likely
the cluster found at the wrong place (a localisation failure, not a non-detection); then
the thresholds in the order the catalog applies them. Masked and edge clusters are
paired with offset candidates too (a cluster at the edge is often found just inside the
searched area): they keep their reason, the candidate is an ``offset_detection``.

**False-candidate kinds** (:func:`false_candidate_kinds`). A candidate matched to no
truth cluster gets the first of:

1. ``offset_detection`` — paired with a missed cluster by the offset match above.
2. ``cluster_fragment`` — within max(``blend_radius_px``, ``fragment_rh`` × r_h) of a
   detected truth cluster (matched to another candidate): a second peak on a found
   cluster's light (r_h its true half-light radius, px).
3. ``nucleus`` — within ``blend_radius_px`` + r of the galaxy's centre (the synthetic
   galaxy's geometry, :func:`nucleus_row`): the bulge's cusp.
4. ``foreground_star`` — within ``star_radius_px`` + r of a (saturated) foreground star.
5. ``background_galaxy`` — within ``galaxy_re`` × r_e + r of a background galaxy.
6. ``ob_association`` — within ``association_a`` × a + r of an OB association (a its EFF
   core radius: 2a is about its half-light radius; the stars of its outskirts are few
   among the arm's own and left to the image).
7. ``field_star`` — none of these, and a significant source is there: the aperture S/N
   (radius ``aperture_radius_px``, about the PSF's FWHM; sky the σ-clipped median of the
   annulus ``annulus_px``; :func:`starclusters.aperture.photometry`, σ from the
   annulus' pixel scatter only — the significance above the local background, without
   the source's own Poisson noise) reaches ``field_star_snr`` in the band where it is
   largest. The synthetic galaxy's field stars are drawn procedurally and listed nowhere,
   so the image decides; a blend of a few bright stars or a knot of the arm counts here.
8. ``noise`` — nothing significant: the network answered the background.

Known objects first, the compact before the extended (a candidate on a galaxy inside an
association counts as the galaxy's), the image last.

:func:`summarise` counts reasons and kinds per galaxy, the misses per bin of true
visibility (:data:`SELECTIONS`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from starclusters.detect.matching import match_positions
from starclusters.errors import ConfigError
from starclusters.sections import dataclass_from_config, is_number

CONFIG_KEY = "scorecard.diagnosis"
DETECTED = "detected"
#: Reasons of a missed cluster, in the order they are tried (module docstring).
MISS_REASONS = (
    "masked",
    "edge",
    "blended",
    "offset",
    "no_peak",
    "class_below",
    "visibility_below",
    "other",
)
#: Kinds of a false candidate, in the order they are tried (module docstring).
FALSE_KINDS = (
    "offset_detection",
    "cluster_fragment",
    "nucleus",
    "foreground_star",
    "background_galaxy",
    "ob_association",
    "field_star",
    "noise",
)
#: Known non-cluster sources, most compact first (also false-candidate kinds): the kinds of
#: ``mosaic/contaminants.parquet`` and the galaxy's nucleus (:func:`nucleus_row`).
CONTAMINANT_KINDS = ("nucleus", "foreground_star", "background_galaxy", "ob_association")
#: Selections of truth clusters by true visibility (thesis eq. 3.2): name -> (lo, hi],
#: NaN visibility in "visibility unknown" only (its window leaves the mosaic).
SELECTIONS = {
    "all": (-math.inf, math.inf),
    "visibility <= 2.5": (-math.inf, 2.5),
    "2.5 < visibility <= 5": (2.5, 5.0),
    "visibility > 5": (5.0, math.inf),
    "visibility unknown": (math.nan, math.nan),
}
#: Columns of :func:`summarise`'s table.
SUMMARY_COLUMNS = (
    "galaxy",
    "role",
    "table",
    "selection",
    "category",
    "count",
    "n_missed",
    "n_selection",
    "fraction",
    "fraction_of_selection",
)
#: Units and meanings of the diagnosis tables' columns (Parquet metadata).
UNITS = {
    "reason": f"'{DETECTED}' or the first of {', '.join(MISS_REASONS)} that applies",
    "kind": f"the first of {', '.join(FALSE_KINDS)} that applies",
    "*_px": "mosaic pixels (0-based grid, distances in px)",
    "class_at_truth": "the class map (p_cluster) at the truth pixel; NaN: window incomplete",
    "mask_bits": "the mosaic mask at the truth pixel (0: usable)",
    "candidate_row, offset_candidate_row, peak_row": "positional row of "
    "detect/candidates.parquet or detect/peaks.parquet, -1 for none",
    "peak_*": "its peak: the one-to-one truth-to-peaks match within r, else the nearest peak "
    "within offset_factor x r",
    "nearest_peak_*": "the nearest peak of any class",
    "offset_truth_row, fragment_truth_row": "positional row of the truth table, -1 for none",
    "<kind>_distance_px, <kind>_reach_px": "to the nearest contaminant of that kind, centre to "
    "centre (inf: none), and its reach",
    "blend_owner": "what owns the peak of a blended cluster: cluster, a contaminant kind, or ''",
    "snr_<band>": "aperture flux / its error from the sky annulus' scatter, per band",
    "fraction": "count / missed clusters of the selection (misses) or / false candidates",
    "fraction_of_selection": "count / clusters of the selection (misses) or / candidates",
}


def check_diagnosis_config(config: Mapping) -> None:
    """The ``scorecard.diagnosis`` values, and its sky annulus outside its aperture
    (:class:`DiagnosisSettings`; ConfigError names the key)."""
    DiagnosisSettings.from_config((config.get("scorecard") or {}).get("diagnosis"))


@dataclass(frozen=True)
class DiagnosisSettings:
    """The diagnosis' own settings (config ``scorecard.diagnosis``; module docstring).

    blend_radius_px: a neighbour this close can own a cluster's peak, px (the raw class
    map of a found cluster stays ≈ 1 out to 3 px and halves at 5 px; smoothed with
    σ = 3 px two such bumps closer than ~8 px leave one maximum); offset_factor: an
    offset candidate lies within this × the match radius (> 1); fragment_rh: a second
    peak within this many true r_h of a detected cluster (or blend_radius_px, the
    larger) is a fragment of it; star_radius_px: reach of a foreground star beyond the
    match radius, px (its saturated core is masked; candidates gather on the mask's
    edge, 14 px from the star on the default, and in its wings); galaxy_re: reach of a
    background galaxy, in effective radii; association_a: reach of an OB association, in its EFF core radii a
    (2 a: about its half-light radius; further out its stars are sparse and the image
    decides); field_star_snr: the aperture S/N that makes a false candidate a field
    star; aperture_radius_px, annulus_px: the aperture (≈ the PSF's FWHM) and the sky
    annulus (inner, outer), px. ConfigError naming ``scorecard.diagnosis.<key>`` for a
    bad value.
    """

    blend_radius_px: float = 8.0
    offset_factor: float = 2.0
    fragment_rh: float = 3.0
    star_radius_px: float = 40.0
    galaxy_re: float = 2.0
    association_a: float = 2.0
    field_star_snr: float = 5.0
    aperture_radius_px: float = 2.0
    annulus_px: tuple[float, float] = (7.0, 9.0)

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{CONFIG_KEY}.{key}: {why}, got {getattr(self, key)!r}")

        for key in (
            "blend_radius_px",
            "fragment_rh",
            "galaxy_re",
            "association_a",
            "field_star_snr",
            "aperture_radius_px",
        ):
            value = getattr(self, key)
            if not (is_number(value) and math.isfinite(value) and value > 0):
                bad(key, "must be a positive number")
        if not (is_number(self.star_radius_px) and self.star_radius_px >= 0):
            bad("star_radius_px", "must be a number >= 0")
        if not (is_number(self.offset_factor) and self.offset_factor > 1):
            bad("offset_factor", "must exceed 1 (offsets lie beyond the match radius)")
        annulus = self.annulus_px
        if (
            not isinstance(annulus, tuple)
            or len(annulus) != 2
            or not all(is_number(v) for v in annulus)
            or not self.aperture_radius_px < annulus[0] < annulus[1]
        ):
            bad("annulus_px", "must be [inner, outer] with aperture_radius_px < inner < outer")

    @classmethod
    def from_config(cls, section: Mapping | None = None, **overrides) -> DiagnosisSettings:
        """From the ``scorecard.diagnosis`` section; ConfigError names an unknown key."""
        return dataclass_from_config(cls, section, CONFIG_KEY, **overrides)

    def to_config(self) -> dict:
        """A plain mapping (lists for tuples), for Parquet metadata and logs."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


# --------------------------------------------------------------------------- helpers


def on_grid(table: pd.DataFrame, wcs) -> pd.DataFrame:
    """``table`` with x_px, y_px recomputed from ra_deg, dec_deg on the grid of ``wcs``.

    The synthetic generator writes its contaminants on the reference band's own grid;
    the mosaic is another (synthetic/truth.py does the same for the truth). wcs: the
    mosaic's celestial astropy WCS.
    """
    out = table.reset_index(drop=True).copy()
    if len(out):
        x, y = wcs.world_to_pixel_values(
            out["ra_deg"].to_numpy(float), out["dec_deg"].to_numpy(float)
        )
    else:
        x = y = np.zeros(0)
    out["x_px"], out["y_px"] = np.asarray(x, float), np.asarray(y, float)
    return out


def nucleus_row(geometry: Mapping | None) -> pd.DataFrame:
    """The galaxy's nucleus as a contaminant row (kind "nucleus", ra_deg, dec_deg) from a
    synthetic galaxy's geometry (the "geometry" metadata of its tables: centre_ra_deg,
    centre_dec_deg); no row without one. The bulge's cusp is a bright compact source
    that is no cluster."""
    geometry = geometry or {}
    if "centre_ra_deg" not in geometry or "centre_dec_deg" not in geometry:
        return pd.DataFrame({"kind": [], "ra_deg": [], "dec_deg": []})
    return pd.DataFrame(
        {
            "kind": ["nucleus"],
            "ra_deg": [float(geometry["centre_ra_deg"])],
            "dec_deg": [float(geometry["centre_dec_deg"])],
        }
    )


def pixel_values(image: np.ndarray, x, y, fill) -> np.ndarray:
    """``image`` (H, W) at the pixels nearest to (x, y) (N,) px; ``fill`` off the image or
    for a NaN position. Returns (N,) of image's dtype (float when fill is NaN)."""
    image = np.asarray(image)
    x, y = np.asarray(x, float), np.asarray(y, float)
    out = np.full(x.shape, fill, dtype=np.result_type(image.dtype, np.asarray(fill).dtype))
    with np.errstate(invalid="ignore"):
        col, row = np.floor(x + 0.5), np.floor(y + 0.5)
        inside = (col >= 0) & (col < image.shape[1]) & (row >= 0) & (row < image.shape[0])
    out[inside] = image[row[inside].astype(np.int64), col[inside].astype(np.int64)]
    return out


def _nearest(xy_from: np.ndarray, xy_to: np.ndarray, exclude_self: bool = False):
    """(index, distance) of the nearest point of ``xy_to`` (M, 2) to each of ``xy_from``
    (N, 2), px; −1 and inf without one (NaN positions have none). exclude_self: the two
    sets are the same, skip each point itself."""
    index = np.full(len(xy_from), -1, np.int64)
    distance = np.full(len(xy_from), np.inf)
    ok_to = np.flatnonzero(np.isfinite(xy_to).all(axis=1))
    ok_from = np.flatnonzero(np.isfinite(xy_from).all(axis=1))
    k = 2 if exclude_self else 1
    if len(ok_to) < k or len(ok_from) == 0:
        return index, distance
    dist, idx = cKDTree(xy_to[ok_to]).query(xy_from[ok_from], k=k)
    if exclude_self:
        # the first of the two that is not the point itself (coincident points tie)
        second = ok_to[idx[:, 0]] == ok_from
        dist = np.where(second, dist[:, 1], dist[:, 0])
        idx = np.where(second, idx[:, 1], idx[:, 0])
    index[ok_from] = ok_to[idx]
    distance[ok_from] = dist
    return index, distance


def _xy(table: pd.DataFrame, x: str, y: str) -> np.ndarray:
    if len(table) == 0:
        return np.zeros((0, 2))
    return table[[x, y]].to_numpy(float)


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} without column(s) {', '.join(missing)}")


def _empty_contaminants() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": pd.Series(dtype=object),
            "x_px": pd.Series(dtype=float),
            "y_px": pd.Series(dtype=float),
        }
    )


# --------------------------------------------------------------------------- misses


def _peak_columns(peaks: pd.DataFrame, rows: np.ndarray, column: str, fill=np.nan) -> np.ndarray:
    """peaks[column] at positional ``rows`` (N,) float64, ``fill`` where a row is −1."""
    values = np.full(len(rows), fill, dtype=float)
    hit = rows >= 0
    if hit.any():
        values[hit] = peaks[column].to_numpy(float)[rows[hit]]
    return values


def _blend_owners(
    xy: np.ndarray,
    peak_xy: np.ndarray,
    cont_xy: np.ndarray,
    cont_kind: np.ndarray,
    rows: np.ndarray,
    near_row: np.ndarray,
    near_dist: np.ndarray,
    blend_radius_px: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend (ii) of :func:`miss_reasons` for the clusters ``rows``: (owner, distance), each
    (N,) over all clusters — "cluster" or the contaminant kind whose centre lies within
    blend_radius_px of the cluster and nearer to its nearest peak than the cluster
    itself (the nearest such owner), "" and NaN where there is none."""
    owner = np.full(len(xy), "", dtype=object)
    distance = np.full(len(xy), np.nan)
    finite = np.flatnonzero(np.isfinite(xy).all(axis=1))
    cont_ok = np.flatnonzero(np.isfinite(cont_xy).all(axis=1))
    truth_tree = cKDTree(xy[finite]) if len(finite) else None
    cont_tree = cKDTree(cont_xy[cont_ok]) if len(cont_ok) else None
    for i in rows:
        if near_row[i] < 0 or not near_dist[i] <= blend_radius_px:
            continue
        peak = peak_xy[near_row[i]]
        found = []
        if truth_tree is not None:
            for j in finite[truth_tree.query_ball_point(xy[i], blend_radius_px)]:
                if j != i and np.hypot(*(xy[j] - peak)) < near_dist[i]:
                    found.append((float(np.hypot(*(xy[j] - xy[i]))), "cluster"))
        if cont_tree is not None:
            for j in cont_ok[cont_tree.query_ball_point(xy[i], blend_radius_px)]:
                if np.hypot(*(cont_xy[j] - peak)) < near_dist[i]:
                    found.append((float(np.hypot(*(cont_xy[j] - xy[i]))), str(cont_kind[j])))
        if found:
            distance[i], owner[i] = min(found)
    return owner, distance


def miss_reasons(
    truth: pd.DataFrame,
    peaks: pd.DataFrame,
    candidates: pd.DataFrame,
    usable: np.ndarray,
    class_map: np.ndarray,
    contaminants: pd.DataFrame | None = None,
    *,
    class_threshold: float,
    visibility_threshold: float,
    match_radius_px: float,
    blend_radius_px: float,
    offset_factor: float = 2.0,
    mask_bits: np.ndarray | None = None,
) -> pd.DataFrame:
    """The truth with whether each cluster was found and why not (module docstring).

    truth: x_px, y_px (mosaic px) and visibility (thesis eq. 3.2; NaN allowed), other
    columns kept; peaks: every peak of the smoothed class map, with peak_id, x, y (px),
    class (p_cluster at the peak) and visibility (weighted); candidates: the peaks
    above the thresholds (peak_id, x, y); usable: (H, W) bool, False where the mosaic
    mask is set; class_map: (H, W) the CLASS map, NaN where the window is incomplete;
    contaminants: kind, x_px, y_px on the mosaic grid (:func:`on_grid`; None: none);
    class_threshold, visibility_threshold: the catalog's cuts; match_radius_px: the
    scorer's radius r, px; blend_radius_px: px; offset_factor: offsets lie within
    offset_factor × r; mask_bits: (H, W) the uint8 mask, copied per cluster (default:
    1 where not usable).

    Returns the truth (fresh index) with detected (bool), reason (str) and: candidate_row,
    candidate_distance_px (the detection); mask_bits, class_at_truth (at the truth
    pixel); nearest_peak_id, nearest_peak_distance_px, nearest_peak_class (any peak);
    n_peaks_within_r; peak_row, peak_id, peak_distance_px, peak_class, peak_visibility,
    peak_is_candidate (its peak: the truth-to-peaks match within r, else the nearest
    peak within offset_factor × r); blend_owner, blend_owner_distance_px;
    offset_candidate_row, offset_distance_px; nearest_cluster_distance_px,
    nearest_cluster_visibility (another truth cluster); nearest_contaminant_kind,
    nearest_contaminant_distance_px. Rows −1 and distances NaN where there is none
    (distances to the nearest neighbour: inf).
    """
    _require(truth, ("x_px", "y_px", "visibility"), "truth")
    _require(peaks, ("peak_id", "x", "y", "class", "visibility"), "peaks")
    _require(candidates, ("peak_id", "x", "y"), "candidates")
    contaminants = _empty_contaminants() if contaminants is None else contaminants
    _require(contaminants, ("kind", "x_px", "y_px"), "contaminants")
    usable = np.asarray(usable, bool)
    class_map = np.asarray(class_map, float)
    if usable.shape != class_map.shape:
        raise ValueError(f"usable {usable.shape} and class_map {class_map.shape} differ in shape")
    r, r_offset = float(match_radius_px), float(offset_factor) * float(match_radius_px)
    out = truth.reset_index(drop=True).copy()
    n = len(out)
    xy = _xy(out, "x_px", "y_px")
    finite = np.isfinite(xy).all(axis=1)
    peak_xy, cand_xy = _xy(peaks, "x", "y"), _xy(candidates, "x", "y")
    visibility = out["visibility"].to_numpy(float)

    # the detection: the scorer's match of the truth to the candidates within r
    cand_row, cand_dist = match_positions(xy, cand_xy, r)
    detected = cand_row >= 0
    cand_owner = np.full(len(candidates), -1, np.int64)
    cand_owner[cand_row[detected]] = np.flatnonzero(detected)

    # where it lies on the mosaic
    masked = ~pixel_values(usable, xy[:, 0], xy[:, 1], True).astype(bool)
    bits = mask_bits if mask_bits is not None else (~usable).astype(np.uint8)
    class_at = pixel_values(class_map, xy[:, 0], xy[:, 1], np.nan)
    edge = ~np.isfinite(class_at)
    searched = finite & ~detected & ~masked & ~edge

    # the peaks: the nearest of all, and its own (the truth-to-peaks match within r)
    near_row, near_dist = _nearest(xy, peak_xy)
    own_row, own_dist = match_positions(xy, peak_xy, r)
    n_within = np.zeros(n, np.int64)
    if len(peak_xy) and finite.any():
        found = cKDTree(peak_xy).query_ball_point(xy[finite], r)
        n_within[finite] = [len(v) for v in found]
    off_centre = (own_row < 0) & (n_within == 0) & (near_dist <= r_offset)
    peak_row = np.where(own_row >= 0, own_row, np.where(off_centre, near_row, -1))
    peak_dist = np.where(own_row >= 0, own_dist, np.where(off_centre, near_dist, np.nan))
    candidate_of_peak = pd.Series(
        np.arange(len(candidates)), index=candidates["peak_id"].to_numpy(np.int64)
    )
    peak_id = _peak_columns(peaks, peak_row, "peak_id", -1).astype(np.int64)
    peak_cand = np.where(
        peak_row >= 0, candidate_of_peak.reindex(peak_id).fillna(-1).to_numpy(np.int64), -1
    )
    peak_owner = np.full(n, -1, np.int64)
    peak_owner[peak_cand >= 0] = cand_owner[peak_cand[peak_cand >= 0]]

    # blended: (i) its peaks within r went to others, (ii) its nearest peak is nearer to a
    # neighbour, (iii) its peak is a candidate matched to another cluster
    kinds = contaminants["kind"].astype(str).to_numpy()
    cont_xy = _xy(contaminants, "x_px", "y_px")
    no_peak_within_r = (own_row < 0) & (n_within == 0)
    owner, owner_dist = _blend_owners(
        xy,
        peak_xy,
        cont_xy,
        kinds,
        np.flatnonzero(searched & no_peak_within_r),
        near_row,
        near_dist,
        blend_radius_px,
    )
    taken_within_r = (own_row < 0) & (n_within > 0)
    by_other = (peak_owner >= 0) & (peak_owner != np.arange(n))
    for i in np.flatnonzero(searched & (taken_within_r | by_other) & (owner == "")):
        other = peak_owner[i] if by_other[i] else np.flatnonzero(own_row == near_row[i])
        other = np.atleast_1d(other)
        if len(other):
            owner[i], owner_dist[i] = "cluster", float(np.hypot(*(xy[other[0]] - xy[i])))
        else:
            owner[i] = "cluster"
    blended = searched & (owner != "")

    # offsets: clusters without a peak within r, paired one to one with the candidates
    # matched to no cluster, within offset_factor × r
    offset_row = np.full(n, -1, np.int64)
    offset_dist = np.full(n, np.nan)
    free = np.flatnonzero(cand_owner < 0)
    # (masked and edge clusters too: one found just inside the searched area keeps its
    # reason, and its candidate is no false detection of anything else)
    eligible = np.flatnonzero(finite & ~detected & ~blended & no_peak_within_r)
    if len(eligible) and len(free):
        pair, dist = match_positions(xy[eligible], cand_xy[free], r_offset)
        hit = pair >= 0
        offset_row[eligible[hit]] = free[pair[hit]]
        offset_dist[eligible[hit]] = dist[hit]
    offset = offset_row >= 0
    # (iii) also: its off-centre peak is a candidate paired with another missed cluster
    paired_to = pd.Series(np.flatnonzero(offset), index=offset_row[offset])
    lost = searched & ~blended & ~offset & (peak_cand >= 0) & np.isin(peak_cand, offset_row[offset])
    for i in np.flatnonzero(lost):
        j = int(paired_to[peak_cand[i]])
        owner[i], owner_dist[i] = "cluster", float(np.hypot(*(xy[j] - xy[i])))
    blended |= lost

    peak_class = _peak_columns(peaks, peak_row, "class")
    peak_visibility = _peak_columns(peaks, peak_row, "visibility")
    with np.errstate(invalid="ignore"):
        class_below = (peak_row >= 0) & ~(peak_class > class_threshold)
        visibility_below = (
            (peak_row >= 0) & ~class_below & ~(peak_visibility > visibility_threshold)
        )
    reason = np.full(n, "other", dtype=object)
    # the first that applies wins: assign from the last to the first
    for name, applies in (
        ("visibility_below", visibility_below),
        ("class_below", class_below),
        ("no_peak", peak_row < 0),
        ("offset", offset),
        ("blended", blended),
        ("edge", edge),
        ("masked", masked),
    ):
        reason[applies & finite & ~detected] = name
    reason[detected] = DETECTED

    nb_row, nb_dist = _nearest(xy, xy, exclude_self=True)
    ct_row, ct_dist = _nearest(xy, cont_xy)
    out["detected"] = detected
    out["reason"] = reason.astype(str)
    out["candidate_row"] = cand_row
    out["candidate_distance_px"] = cand_dist
    out["mask_bits"] = pixel_values(bits, xy[:, 0], xy[:, 1], 0).astype(np.int64)
    out["class_at_truth"] = class_at
    out["nearest_peak_id"] = _peak_columns(peaks, near_row, "peak_id", -1).astype(np.int64)
    out["nearest_peak_distance_px"] = np.where(near_row >= 0, near_dist, np.nan)
    out["nearest_peak_class"] = _peak_columns(peaks, near_row, "class")
    out["n_peaks_within_r"] = n_within
    out["peak_row"] = peak_row
    out["peak_id"] = peak_id
    out["peak_distance_px"] = peak_dist
    out["peak_class"] = peak_class
    out["peak_visibility"] = peak_visibility
    out["peak_is_candidate"] = peak_cand >= 0
    out["blend_owner"] = np.where(blended, owner, "").astype(str)
    out["blend_owner_distance_px"] = np.where(blended, owner_dist, np.nan)
    out["offset_candidate_row"] = offset_row
    out["offset_distance_px"] = offset_dist
    out["nearest_cluster_distance_px"] = nb_dist
    out["nearest_cluster_visibility"] = np.where(
        nb_row >= 0, visibility[np.maximum(nb_row, 0)] if n else np.nan, np.nan
    )
    out["nearest_contaminant_kind"] = np.where(
        ct_row >= 0, kinds[np.maximum(ct_row, 0)] if len(kinds) else "", ""
    ).astype(str)
    out["nearest_contaminant_distance_px"] = ct_dist
    return out


# --------------------------------------------------------------------------- false candidates


def aperture_snr(
    images: Mapping[str, np.ndarray],
    bad: np.ndarray | None,
    x,
    y,
    radius_px: float,
    annulus_px: tuple[float, float],
) -> pd.DataFrame:
    """Aperture S/N of the positions (x, y) (N,) px in every band: (N, bands) table
    ``snr_<band>``, with snr_max and snr_band (the band where it is largest; "" when
    every band is NaN).

    images: band -> (H, W) counts/s; bad: (H, W) bool, unusable pixels. S/N = F / σ_F,
    F the sky-subtracted aperture flux and σ_F its error from the annulus' pixel scatter
    (:func:`starclusters.aperture.photometry` without a Poisson term): the
    significance of a source above the local background. NaN where the aperture touches
    an unusable pixel or the annulus has too few pixels.
    """
    from starclusters.aperture import photometry

    columns = {}
    for band, image in images.items():
        flux, error = photometry(np.asarray(image), x, y, radius_px, tuple(annulus_px), None, bad)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns[f"snr_{band}"] = flux / error
    n = len(np.atleast_1d(x))
    table = pd.DataFrame(columns, index=range(n))
    values = table.to_numpy(float).reshape(n, len(columns))
    finite = np.isfinite(values)
    best = (
        np.argmax(np.where(finite, values, -np.inf), axis=1) if len(columns) else np.zeros(n, int)
    )
    measured = finite.any(axis=1)
    names = np.array([*images, ""], dtype=object)
    table["snr_max"] = np.where(
        measured, values[np.arange(n), best] if len(columns) else 0.0, np.nan
    )
    table["snr_band"] = np.where(measured, names[best], "").astype(str)
    return table


def contaminant_reach_px(
    contaminants: pd.DataFrame,
    *,
    match_radius_px: float,
    blend_radius_px: float,
    star_radius_px: float,
    galaxy_re: float,
    association_a: float,
    pixel_scale_arcsec: float,
) -> np.ndarray:
    """(N,) px: how far from each contaminant's centre a false candidate is taken for it.

    nucleus: blend_radius_px (a compact cusp); foreground_star: star_radius_px;
    background_galaxy: galaxy_re × re_arcsec; ob_association: association_a ×
    eff_a_arcsec (arcsec / pixel_scale_arcsec); each plus the match radius. A missing
    size counts as zero (the match radius alone).
    """
    kind = contaminants["kind"].astype(str).to_numpy()

    def arcsec(column):
        if column not in contaminants:
            return np.zeros(len(contaminants))
        return np.nan_to_num(contaminants[column].to_numpy(float)) / float(pixel_scale_arcsec)

    reach = np.zeros(len(contaminants))
    reach[kind == "nucleus"] = float(blend_radius_px)
    reach[kind == "foreground_star"] = float(star_radius_px)
    galaxy = kind == "background_galaxy"
    reach[galaxy] = float(galaxy_re) * arcsec("re_arcsec")[galaxy]
    association = kind == "ob_association"
    reach[association] = float(association_a) * arcsec("eff_a_arcsec")[association]
    return reach + float(match_radius_px)


def false_candidate_kinds(
    candidates: pd.DataFrame,
    diagnosis: pd.DataFrame,
    contaminants: pd.DataFrame | None,
    snr: pd.DataFrame,
    *,
    match_radius_px: float,
    blend_radius_px: float,
    fragment_rh: float,
    star_radius_px: float,
    galaxy_re: float,
    association_a: float,
    field_star_snr: float,
    pixel_scale_arcsec: float,
) -> pd.DataFrame:
    """The candidates matched to no truth cluster, each with its kind (module docstring).

    candidates: x, y (px) and the catalog's other columns (kept); diagnosis:
    :func:`miss_reasons`' table of these candidates (x_px, y_px, rh_arcsec, visibility,
    detected, candidate_row, offset_candidate_row); contaminants: kind, x_px, y_px on the
    mosaic grid, re_arcsec (galaxies), eff_a_arcsec (associations) (None: none); snr: one
    row per candidate (:func:`aperture_snr` at the candidates: snr_<band>, snr_max,
    snr_band), kept; match_radius_px: r, px; blend_radius_px: px; fragment_rh: in r_h;
    star_radius_px: px; galaxy_re: in r_e; association_a: in EFF a (see
    :func:`contaminant_reach_px`); field_star_snr: the S/N cut; pixel_scale_arcsec:
    arcsec per px of the mosaic grid.

    Returns the false candidates, in catalog order: candidate_row (positional row of
    ``candidates``), their columns, the snr columns, kind, nearest_truth_distance_px,
    nearest_truth_detected, nearest_truth_visibility, offset_truth_row (the missed
    cluster it is paired with), fragment_truth_row (the detected cluster it is a
    fragment of; both −1 for none) and per contaminant kind <kind>_distance_px (to the
    nearest one, inf without one) and <kind>_reach_px (that one's reach, NaN without).
    """
    _require(candidates, ("x", "y"), "candidates")
    _require(
        diagnosis,
        ("x_px", "y_px", "rh_arcsec", "visibility", "detected", "candidate_row"),
        "diagnosis",
    )
    _require(diagnosis, ("offset_candidate_row",), "diagnosis")
    _require(snr, ("snr_max",), "snr")
    if len(snr) != len(candidates):
        raise ValueError(f"snr has {len(snr)} rows for {len(candidates)} candidates")
    contaminants = _empty_contaminants() if contaminants is None else contaminants
    _require(contaminants, ("kind", "x_px", "y_px"), "contaminants")
    taken = np.zeros(len(candidates), bool)
    rows = diagnosis["candidate_row"].to_numpy(np.int64)
    taken[rows[rows >= 0]] = True
    false_rows = np.flatnonzero(~taken)
    out = candidates.iloc[false_rows].reset_index(drop=True)
    out.insert(0, "candidate_row", false_rows.astype(np.int64))
    snr = snr.iloc[false_rows].reset_index(drop=True)
    out[list(snr.columns)] = snr
    m = len(out)
    xy = _xy(out, "x", "y")
    truth_xy = _xy(diagnosis, "x_px", "y_px")
    detected = diagnosis["detected"].to_numpy(bool)

    t_row, t_dist = _nearest(xy, truth_xy)
    hit = t_row >= 0
    out["nearest_truth_distance_px"] = t_dist
    out["nearest_truth_detected"] = hit & detected[np.maximum(t_row, 0)] if len(truth_xy) else hit
    visibility = diagnosis["visibility"].to_numpy(float)
    out["nearest_truth_visibility"] = (
        np.where(hit, visibility[np.maximum(t_row, 0)], np.nan) if len(truth_xy) else np.nan
    )

    # 1. the offset pairs of miss_reasons
    offset_truth = np.full(m, -1, np.int64)
    paired = diagnosis["offset_candidate_row"].to_numpy(np.int64)
    where = pd.Series(np.arange(m), index=false_rows)
    for t in np.flatnonzero(paired >= 0):
        if paired[t] in where.index:
            offset_truth[where[paired[t]]] = t
    out["offset_truth_row"] = offset_truth

    # 2. fragments: within max(blend radius, fragment_rh × r_h) of a detected cluster
    fragment_truth = np.full(m, -1, np.int64)
    found = np.flatnonzero(detected & np.isfinite(truth_xy).all(axis=1))
    if len(found) and m:
        rh_px = diagnosis["rh_arcsec"].to_numpy(float)[found] / float(pixel_scale_arcsec)
        reach = np.fmax(float(blend_radius_px), float(fragment_rh) * rh_px)
        d = np.hypot(*(xy[:, None, :] - truth_xy[found][None, :, :]).transpose(2, 0, 1))
        d = np.where(d <= reach[None, :], d, np.inf)
        best = np.argmin(d, axis=1)
        inside = np.isfinite(d[np.arange(m), best])
        fragment_truth[inside] = found[best[inside]]
    out["fragment_truth_row"] = fragment_truth

    # 3.-5. the contaminants, each within its reach
    kinds = contaminants["kind"].astype(str).to_numpy()
    cont_xy = _xy(contaminants, "x_px", "y_px")
    reach = contaminant_reach_px(
        contaminants,
        match_radius_px=match_radius_px,
        blend_radius_px=blend_radius_px,
        star_radius_px=star_radius_px,
        galaxy_re=galaxy_re,
        association_a=association_a,
        pixel_scale_arcsec=pixel_scale_arcsec,
    )
    near = {}
    for kind in CONTAMINANT_KINDS:
        mine = np.flatnonzero((kinds == kind) & np.isfinite(cont_xy).all(axis=1))
        distance, their_reach, within = np.full(m, np.inf), np.full(m, np.nan), np.zeros(m, bool)
        if len(mine) and m:
            d = np.hypot(*(xy[:, None, :] - cont_xy[mine][None, :, :]).transpose(2, 0, 1))
            nearest = np.argmin(d, axis=1)
            distance = d[np.arange(m), nearest]
            their_reach = reach[mine][nearest]
            within = (d <= reach[mine][None, :]).any(axis=1)
        out[f"{kind}_distance_px"] = distance
        out[f"{kind}_reach_px"] = their_reach
        near[kind] = within

    with np.errstate(invalid="ignore"):
        significant = out["snr_max"].to_numpy(float) >= float(field_star_snr)
    kind = np.full(m, "noise", dtype=object)
    # the first that applies wins: assign from the last to the first
    for name, applies in (
        ("field_star", significant),
        ("ob_association", near["ob_association"]),
        ("background_galaxy", near["background_galaxy"]),
        ("foreground_star", near["foreground_star"]),
        ("nucleus", near["nucleus"]),
        ("cluster_fragment", fragment_truth >= 0),
        ("offset_detection", offset_truth >= 0),
    ):
        kind[applies] = name
    out["kind"] = kind.astype(str)
    return out


# --------------------------------------------------------------------------- summary


def _select(visibility: np.ndarray, selection: str) -> np.ndarray:
    lo, hi = SELECTIONS[selection]
    if selection == "all":
        return np.ones(len(visibility), bool)
    if math.isnan(lo):
        return ~np.isfinite(visibility)
    with np.errstate(invalid="ignore"):
        return (visibility > lo) & (visibility <= hi)


def summarise(
    diagnosis: pd.DataFrame, false: pd.DataFrame, n_candidates: int, galaxy: str, role: str
) -> pd.DataFrame:
    """Counts of the miss reasons and false-candidate kinds of one galaxy (:data:`SUMMARY_COLUMNS`).

    diagnosis: :func:`miss_reasons`' table; false: :func:`false_candidate_kinds`' table;
    n_candidates: the catalog's length. Table "miss_reasons": per selection of true
    visibility (:data:`SELECTIONS`) one row per reason (detected first, every reason
    even at zero): count, n_missed (missed clusters of the selection), n_selection
    (its clusters), fraction = count / n_missed (NaN for detected, or with none
    missed) and fraction_of_selection = count / n_selection. Table "false_kinds"
    (selection "all"): per kind, n_missed = false candidates, n_selection = candidates,
    fraction = count / false candidates, fraction_of_selection = count / candidates.
    """
    rows = []
    visibility = diagnosis["visibility"].to_numpy(float)
    reason = diagnosis["reason"].astype(str).to_numpy()
    for selection in SELECTIONS:
        chosen = _select(visibility, selection)
        n_sel = int(chosen.sum())
        n_missed = int((chosen & (reason != DETECTED)).sum())
        for category in (DETECTED, *MISS_REASONS):
            count = int((chosen & (reason == category)).sum())
            fraction = count / n_missed if n_missed and category != DETECTED else np.nan
            rows.append(
                (
                    "miss_reasons",
                    selection,
                    category,
                    count,
                    n_missed,
                    n_sel,
                    fraction,
                    count / n_sel if n_sel else np.nan,
                )
            )
    kinds = false["kind"].astype(str).to_numpy()
    n_false = len(false)
    for category in FALSE_KINDS:
        count = int((kinds == category).sum())
        rows.append(
            (
                "false_kinds",
                "all",
                category,
                count,
                n_false,
                int(n_candidates),
                count / n_false if n_false else np.nan,
                count / n_candidates if n_candidates else np.nan,
            )
        )
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS[2:]))
    table.insert(0, "role", role)
    table.insert(0, "galaxy", galaxy)
    return table[list(SUMMARY_COLUMNS)]
