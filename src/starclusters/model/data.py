"""Training data of the CNN: the mock bank and the background cutouts, combined on the fly.

Thesis §3.2.2: "Training proceeds by sampling from M83 backgrounds and the cluster bank
separately, combining the cluster and background images on the fly". :class:`TrainingData`
holds both in memory as float32 counts/s cubes (N, B, S, S), each image tagged with a split:

- backgrounds keep the ``split`` column of their shard tables (spatial blocks, so windows of
  different splits never share a pixel);
- mocks are split by a hash of their ``seed`` column (:func:`split_by_seed`): deterministic,
  independent of shard layout and row order, and a mock keeps its split when the bank grows.

:meth:`TrainingData.make_batch` draws one training batch: the first half of it are bare
backgrounds (class 0, cluster-parameter losses masked), the second half mocks put on other
random backgrounds of the same split with THE :func:`~starclusters.mocks.compose.compose`,
which also gives the visibility target. Augmentations (all from the caller's numpy
Generator, nothing else): every background and every stamp gets its own random 90°
rotation and flip (independently: a cluster is not tied to the orientation of its sky),
the stamp is shifted by up to ``jitter_px`` pixels (centring jitter), and optionally each
band of each background is scaled by N(1, σ) (calibration jitter, thesis §3.3.1: σ = 0.2).

A batch is composed at once, with no loop over its images: the orientations and shifts are
integer pixel maps (:func:`_window_maps`), applied by one gather per cube, then one batched
``compose()``. By default in numpy on the CPU; with ``device`` (e.g. "cuda") in torch on that
device, from copies of the bank and the backgrounds kept there (moved once, on first use).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from starclusters.errors import ConfigError, InputFileError
from starclusters.io import default_remedy, read_cube, read_table
from starclusters.mocks.compose import compose, observed_rh_px
from starclusters.model.codec import ParameterGrids, preprocess
from starclusters.model.targets import batch_targets, regression_targets

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
#: Default shares of the mock bank per split (by seed hash).
DEFAULT_MOCK_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
#: Mock-table columns the training needs (the cluster parameters of the targets, and the seed).
MOCK_COLUMNS = ("log_age_yr", "log_mass_msun", "av_mag", "log_rh_arcsec", "seed")
#: Smallest calibration factor: N(1, σ) draws below it are clipped (a flux cannot flip sign).
MIN_CALIBRATION_FACTOR = 0.1


def split_by_seed(seeds, fractions: Mapping[str, float] | None = None) -> np.ndarray:
    """Split name ("train", "val", "test") of each mock from a hash of its seed, (N,) str.

    seeds: (N,) integers (the bank's ``seed`` column). Each seed is hashed (BLAKE2b of its
    64-bit two's-complement bytes) to u in [0, 1); u < f_train gives "train", u < f_train +
    f_val "val", else "test". The result depends on the seed alone. ConfigError naming
    ``train.mock_split_fractions`` unless the fractions are train/val/test in [0, 1] summing
    to 1.
    """
    fractions = dict(DEFAULT_MOCK_FRACTIONS if fractions is None else fractions)
    key = "train.mock_split_fractions"
    if set(fractions) != set(SPLITS):
        raise ConfigError(f"{key}: give exactly train, val and test, got {sorted(fractions)}")
    values = [fractions[s] for s in SPLITS]
    if any(not isinstance(v, int | float) or not 0 <= v <= 1 for v in values):
        raise ConfigError(f"{key}: each share must be a number in [0, 1], got {fractions}")
    if abs(sum(values) - 1) > 1e-9:
        raise ConfigError(f"{key}: the shares must sum to 1, got {fractions}")
    seeds = np.asarray(seeds).reshape(-1)
    u = np.array(
        [
            int.from_bytes(
                hashlib.blake2b((int(s) % 2**64).to_bytes(8, "little"), digest_size=8).digest(),
                "little",
            )
            / 2.0**64
            for s in seeds
        ]
    )
    edges = np.cumsum(values)[:2]
    return np.array(SPLITS, dtype=object)[np.searchsorted(edges, u, side="right")].astype(str)


def _orient(image: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """(B, S, S) rotated by k × 90° and, if ``flip``, mirrored left-right (the 8 symmetries).

    Rotates about the array's middle, which for an even S is not pixel (S//2, S//2); use
    :func:`orient_centred` for stamps.
    """
    out = np.rot90(image, k, axes=(-2, -1))
    return out[..., ::-1] if flip else out


@functools.lru_cache(maxsize=64)
def _centre_shift(size: int, k: int, flip: bool) -> tuple[int, int]:
    """(dy, dx) that moves pixel (S//2, S//2) of an oriented S × S array back to its place."""
    probe = np.zeros((size, size))
    probe[size // 2, size // 2] = 1.0
    y, x = np.unravel_index(np.argmax(_orient(probe, k, flip)), probe.shape)
    return size // 2 - int(y), size // 2 - int(x)


def orient_centred(stamp: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """(B, S, S) stamp rotated by k × 90° (and flipped) about pixel (S//2, S//2), its centre.

    For an even S a plain rotation moves that pixel by one; the result is rolled back by it
    (one edge row/column of the stamp wraps around, where a cluster has little light).
    """
    dy, dx = _centre_shift(stamp.shape[-1], int(k), bool(flip))
    out = _orient(stamp, k, flip)
    return np.roll(out, (dy, dx), axis=(-2, -1)) if dy or dx else out


@functools.lru_cache(maxsize=16)
def _orientation_maps(size: int) -> np.ndarray:
    """(2, 8, S, S) int64 pixel maps of the 8 orientations o = k + 4·flip, read-only.

    [0, o] is :func:`_orient` (backgrounds), [1, o] :func:`orient_centred` (stamps): entry
    (y, x) holds the flat index y·S + x of the input pixel that lands on output pixel (y, x).
    Built by those two functions, so the maps are exactly their geometry.
    """
    source = np.arange(size * size).reshape(1, size, size)
    maps = np.stack(
        [
            np.stack([f(source, k, flip)[0] for flip in (False, True) for k in range(4)])
            for f in (_orient, orient_centred)
        ]
    )
    maps.flags.writeable = False
    return maps


def _window_maps(base, grid, dy, dx, orientation=None):
    """(N, S, S) flat source pixel of every output pixel of roll(orient(image), (dy, dx)).

    base: (8, S, S) maps of :func:`_orientation_maps`; grid: arange(S); dy, dx,
    orientation: (N,) integers (orientation None: unrotated). Output pixel (y, x) takes
    pixel ((y - dy) mod S, (x - dx) mod S) of the oriented image, as np.roll does. numpy
    arrays or torch tensors, all in one of the two (and on one device).
    """
    size = grid.shape[0]
    rows = (grid[None, :, None] - dy[:, None, None]) % size
    cols = (grid[None, None, :] - dx[:, None, None]) % size
    if orientation is None:
        return base[0][rows, cols]
    return base[orientation[:, None, None], rows, cols]


def _gather(cube, index, maps, bands):
    """(N, B, S, S) images ``index`` (N,) of ``cube`` (M, B, S·S), through ``maps`` (N, S, S).

    Output pixel (y, x) of band b of image i is cube[index[i], b, maps[i, y, x]]; bands is
    arange(B). One gather through flat indices (numpy, or torch on any device).
    """
    n, size = maps.shape[0], maps.shape[-1]
    plane = size * size
    flat = (index[:, None, None] * cube.shape[1] + bands[None, :, None]) * plane
    flat = flat + maps.reshape(n, 1, plane)
    return cube.reshape(-1)[flat].reshape(n, bands.shape[0], size, size)


def star_groups_in(n_backgrounds: int, fraction: float) -> int:
    """How many of a batch's ``n_backgrounds`` background windows carry a star group:
    ``fraction`` of them, rounded, at least one when the fraction is above 0.
    ConfigError naming ``train.star_group_fraction`` outside [0, 1]."""
    if isinstance(fraction, bool) or not 0 <= fraction <= 1:
        raise ConfigError(f"train.star_group_fraction: must be in [0, 1], got {fraction!r}")
    if fraction == 0 or n_backgrounds < 1:
        return 0
    return min(n_backgrounds, max(1, round(fraction * n_backgrounds)))


@dataclass(eq=False)
class TrainingData:
    """The mock bank and background cutouts in memory, with their splits.

    bands: band names in channel order (B); pixel_scale_arcsec: native pixel, arcsec;
    exptime_s: (B,) exposure time per band, s (the backgrounds'); psf_rh_px: (B,) PSF
    half-light radius per band, native px (widens r_h into r_h,obs for the visibility);
    mocks: (N, B, S, S) noise-free cluster stamps, counts/s, centred on pixel (S//2, S//2);
    mock_params: N rows with at least log_age_yr, log_mass_msun, av_mag, log_rh_arcsec,
    seed; mock_split: (N,) "train"/"val"/"test"; backgrounds: (M, B, S, S) cutouts, counts/s;
    background_split: (M,) split names; star_groups: optional (K, B, S, S) noise-free
    star-group stamps (hard negatives, :mod:`starclusters.mocks.star_groups`), counts/s,
    centred like the mocks, with star_group_params (K rows with at least ``seed``) and
    star_group_split (K,) (by seed, as the mocks). Arrays are converted to native float32
    (a copy only where needed). ValueError if shapes or columns disagree.
    """

    bands: tuple[str, ...]
    pixel_scale_arcsec: float
    exptime_s: np.ndarray
    psf_rh_px: np.ndarray
    mocks: np.ndarray
    mock_params: pd.DataFrame
    mock_split: np.ndarray
    backgrounds: np.ndarray
    background_split: np.ndarray
    star_groups: np.ndarray | None = None
    star_group_params: pd.DataFrame | None = None
    star_group_split: np.ndarray | None = None

    def __post_init__(self):
        self.bands = tuple(self.bands)
        b = len(self.bands)
        self.mocks = np.asarray(self.mocks, dtype=np.float32)
        self.backgrounds = np.asarray(self.backgrounds, dtype=np.float32)
        self.exptime_s = np.broadcast_to(np.asarray(self.exptime_s, dtype=float), (b,)).copy()
        self.psf_rh_px = np.broadcast_to(np.asarray(self.psf_rh_px, dtype=float), (b,)).copy()
        self.mock_split = np.asarray(self.mock_split).astype(str)
        self.background_split = np.asarray(self.background_split).astype(str)
        self.mock_params = pd.DataFrame(self.mock_params).reset_index(drop=True)
        for name, cube in (("mocks", self.mocks), ("backgrounds", self.backgrounds)):
            if cube.ndim != 4 or cube.shape[1] != b or cube.shape[2] != cube.shape[3]:
                raise ValueError(
                    f"{name} must be (N, {b}, S, S) for bands {self.bands}, got {cube.shape}"
                )
        if self.mocks.shape[2:] != self.backgrounds.shape[2:]:
            raise ValueError(
                f"mock stamps {self.mocks.shape[2:]} and background cutouts "
                f"{self.backgrounds.shape[2:]} differ in size; build both with the same window_px"
            )
        missing = [c for c in MOCK_COLUMNS if c not in self.mock_params]
        if missing:
            raise ValueError(f"mock_params lack columns {missing}; the bank tables have them")
        for name, n, split in (
            ("mock", len(self.mocks), self.mock_split),
            ("background", len(self.backgrounds), self.background_split),
        ):
            if split.shape != (n,):
                raise ValueError(f"{name} split has shape {split.shape}, expected ({n},)")
            unknown = sorted(set(split) - set(SPLITS))
            if unknown:
                raise ValueError(f"{name} split has unknown names {unknown}; use {SPLITS}")
        if len(self.mock_params) != len(self.mocks):
            raise ValueError(f"{len(self.mock_params)} mock rows for {len(self.mocks)} stamps")
        if self.star_groups is not None:
            self.star_groups = np.asarray(self.star_groups, dtype=np.float32)
            self.star_group_split = np.asarray(self.star_group_split).astype(str)
            self.star_group_params = pd.DataFrame(self.star_group_params).reset_index(drop=True)
            k = len(self.star_groups)
            if self.star_groups.shape[1:] != self.mocks.shape[1:]:
                raise ValueError(
                    f"star groups {self.star_groups.shape[1:]} and mocks {self.mocks.shape[1:]} "
                    "differ in bands or size; build both with the same bands and window_px"
                )
            if self.star_group_split.shape != (k,) or len(self.star_group_params) != k:
                raise ValueError(f"star-group split and table must have {k} rows")
            unknown = sorted(set(self.star_group_split) - set(SPLITS))
            if unknown:
                raise ValueError(f"star-group split has unknown names {unknown}; use {SPLITS}")
        if np.any(self.exptime_s <= 0):
            raise ValueError(f"exptime_s must be > 0, got {self.exptime_s}")
        rh_px = 10.0 ** self.mock_params["log_rh_arcsec"].to_numpy(float) / self.pixel_scale_arcsec
        #: (N, B) r_h,obs of every mock, px
        self.rh_obs_px = np.stack([observed_rh_px(r, self.psf_rh_px) for r in rh_px]).reshape(
            len(self.mocks), b
        )
        self._kits = {}  # per device: the cubes and pixel maps there (see _kit)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_kits"] = {}  # device copies are not pickled (each process makes its own)
        return state

    def _kit(self, device):
        """Cubes, pixel maps and converters of the numpy path (device None) or of ``device``.

        The torch kit copies mocks and backgrounds to the device once (float32, N·B·S²·4
        bytes each: 2.5 GB for 50,000 mocks of 3 × 64² px) and keeps them.
        """
        key = None if device is None else torch.device(device)
        if key is not None and key.type == "cuda" and key.index is None:
            key = torch.device("cuda", torch.cuda.current_device())
        if key in self._kits:
            return self._kits[key]
        s, b = self.window_px, len(self.bands)
        if key is None:
            kit = SimpleNamespace(
                put=np.asarray,
                host=np.asarray,
                cat=np.concatenate,
                float32=lambda a: a.astype(np.float32, copy=False),
                mocks=self.mocks.reshape(len(self.mocks), b, s * s),
                backgrounds=self.backgrounds.reshape(len(self.backgrounds), b, s * s),
                star_groups=None
                if self.star_groups is None
                else self.star_groups.reshape(len(self.star_groups), b, s * s),
                maps=_orientation_maps(s),
                grid=np.arange(s),
                bands=np.arange(b),
                exptime=self.exptime_s,
            )
        else:

            def put(a):
                return torch.as_tensor(a, device=key)  # no copy for CPU arrays

            kit = SimpleNamespace(
                put=put,
                host=lambda t: t.detach().cpu().numpy(),
                cat=torch.cat,
                float32=lambda t: t.to(torch.float32),
                mocks=put(self.mocks).reshape(len(self.mocks), b, s * s),
                backgrounds=put(self.backgrounds).reshape(len(self.backgrounds), b, s * s),
                star_groups=None
                if self.star_groups is None
                else put(self.star_groups).reshape(len(self.star_groups), b, s * s),
                maps=put(_orientation_maps(s).copy()),
                grid=torch.arange(s, device=key),
                bands=torch.arange(b, device=key),
                exptime=put(self.exptime_s),
            )
        self._kits[key] = kit
        return kit

    @property
    def window_px(self) -> int:
        """S, the side of the stamps and cutouts, px."""
        return int(self.mocks.shape[-1])

    def band_scale(self) -> np.ndarray:
        """(B,) float32 counts/s: the fixed input scales of a dense-ready network.

        The median over the training backgrounds of each band's standard deviation within a
        cutout: the typical number the thesis' per-window normalisation divides by, so that
        arcsinh(pixel / scale) spans a similar range. ValueError without training backgrounds.
        """
        train = self.backgrounds[self.background_split == "train"]
        if len(train) == 0:
            raise ValueError("no training backgrounds to set the input scales from")
        std = train.reshape(len(train), len(self.bands), -1).std(axis=2)
        scale = np.median(std, axis=0).astype(np.float32)
        # a band without any structure (constant backgrounds) still needs a finite scale
        return np.where(scale > 0, scale, np.float32(1.0))

    def counts(self) -> dict[str, dict[str, int]]:
        """{"mocks": {split: n}, "backgrounds": {split: n}} and "star_groups" if loaded."""
        out = {
            "mocks": {s: int(np.sum(self.mock_split == s)) for s in SPLITS},
            "backgrounds": {s: int(np.sum(self.background_split == s)) for s in SPLITS},
        }
        if self.star_groups is not None:
            out["star_groups"] = {s: int(np.sum(self.star_group_split == s)) for s in SPLITS}
        return out

    def fingerprint(self) -> str:
        """A short hash of the data's shapes, bands, splits, seeds and per-image sums.

        Stored in checkpoints so that training does not resume on other data.
        """
        h = hashlib.blake2b(digest_size=12)
        h.update(repr((self.bands, self.mocks.shape, self.backgrounds.shape)).encode())
        h.update(np.asarray(self.exptime_s, dtype=np.float64).tobytes())
        h.update(np.asarray(self.psf_rh_px, dtype=np.float64).tobytes())
        h.update(self.mock_params["seed"].to_numpy(np.int64).tobytes())
        h.update("".join(self.mock_split).encode())
        h.update("".join(self.background_split).encode())
        for cube in (self.mocks, self.backgrounds):
            h.update(cube.sum(axis=(1, 2, 3), dtype=np.float64).tobytes())
        if self.star_groups is not None:  # absent: the fingerprint of the data before them
            h.update(repr(self.star_groups.shape).encode())
            h.update(self.star_group_params["seed"].to_numpy(np.int64).tobytes())
            h.update("".join(self.star_group_split).encode())
            h.update(self.star_groups.sum(axis=(1, 2, 3), dtype=np.float64).tobytes())
        return h.hexdigest()

    def _indices(self, kind: str, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        labels = {
            "mocks": self.mock_split,
            "backgrounds": self.background_split,
            "star groups": self.star_group_split,
        }[kind]
        idx = np.flatnonzero(labels == split)
        if idx.size == 0:
            fix = (
                "give backgrounds.split_fractions a positive share for it, or more cutouts"
                if kind == "backgrounds"
                else "give train.mock_split_fractions a positive share for it, or more of them"
            )
            raise ConfigError(f"split {split!r} has no {kind}; {fix}")
        return idx

    def draw(
        self,
        split: str,
        batch_size: int,
        rng: np.random.Generator,
        *,
        augment: bool = True,
        jitter_px: int = 2,
        calibration_jitter: float = 0.0,
        device=None,
        n_backgrounds: int | None = None,
        star_group_fraction: float = 0.0,
    ) -> tuple[np.ndarray | torch.Tensor, pd.DataFrame]:
        """Raw images of one batch: (images (N, B, S, S) float32 counts/s, table of N rows).

        Rows [0, K) are bare backgrounds, rows [K, N) mocks composed on backgrounds, all of
        ``split``, drawn uniformly with replacement; K = n_backgrounds, by default N // 2
        (thesis §3.2.2; the regression network of ch. 2 trains on clusters only, K = 0). augment: a random 90° rotation
        and left-right flip for each background and (independently) each stamp (about its
        centre pixel, :func:`orient_centred`). jitter_px:
        the stamp is moved by (dy, dx), each uniform in [-jitter_px, jitter_px] (the
        background is rolled by -(dy, dx) before :func:`compose` and the result back, so
        the background stays in place and the visibility is measured around the cluster;
        the cluster's light wraps around the window edge by those few pixels).
        calibration_jitter: σ of the per-band background factor N(1, σ), clipped at
        MIN_CALIBRATION_FACTOR (0 = off; thesis §3.3.1: 0.2), applied before compose.
        star_group_fraction: the last :func:`star_groups_in` (K, fraction) of the K
        background rows carry a star group (hard negatives, class 0), composed, oriented and
        jittered as the mocks; the others stay bare. Their random numbers are drawn after all the
        others, so a batch without star groups is the one drawn before they existed.

        The table has is_cluster, the mock's log_age_yr, log_mass_msun, av_mag,
        log_rh_arcsec (NaN for backgrounds), visibility (0 for backgrounds; max over bands)
        and visibility_<band>, mock_index and background_index (rows of the arrays; -1 for
        no mock), shift_y_px, shift_x_px, star_group_index (-1 for none) and
        star_group_visibility (the group's visibility as a cluster's, NaN for none; its
        visibility target stays 0). All randomness comes from ``rng``.

        device: None composes in numpy and returns a numpy array; a torch device ("cuda",
        "cpu", ...) composes in torch there (from the device copies of :meth:`_kit`) and
        returns a tensor on it. Indices, orientations, shifts and calibration factors come
        from ``rng`` in the same order either way; the numpy path draws the Poisson noise
        from ``rng`` (the draws a per-image loop would make), the torch path from a torch
        Generator seeded by one further integer of ``rng``.
        """
        if not isinstance(batch_size, int | np.integer) or batch_size < 2:
            raise ValueError(f"batch_size must be an integer ≥ 2, got {batch_size!r}")
        if jitter_px < 0 or 2 * jitter_px >= self.window_px:
            raise ConfigError(
                f"train.jitter_px: must be in [0, window_px / 2), got {jitter_px}; a few px"
            )
        if calibration_jitter < 0:
            raise ConfigError(f"train.calibration_jitter: must be ≥ 0, got {calibration_jitter}")
        n_bg = batch_size // 2 if n_backgrounds is None else int(n_backgrounds)
        if not 0 <= n_bg < batch_size:
            raise ValueError(f"n_backgrounds must be in [0, {batch_size}), got {n_backgrounds}")
        n_cl = batch_size - n_bg
        n_sg = star_groups_in(n_bg, star_group_fraction)
        if n_sg and self.star_groups is None:
            raise ConfigError(
                "train.star_group_fraction: above 0 but no star groups were loaded; give the "
                "star-group shards (the workflow does when the share is above 0)"
            )
        n_bare = n_bg - n_sg
        b = len(self.bands)
        mock_pool = self._indices("mocks", split)
        bg_pool = self._indices("backgrounds", split)
        # every random number drawn up front, in a fixed order, then compose's Poisson draws
        bg_idx = bg_pool[rng.integers(0, bg_pool.size, batch_size)]
        mock_idx = mock_pool[rng.integers(0, mock_pool.size, n_cl)]
        bg_rot = rng.integers(0, 4, batch_size)
        bg_flip = rng.integers(0, 2, batch_size).astype(bool)
        st_rot = rng.integers(0, 4, n_cl)
        st_flip = rng.integers(0, 2, n_cl).astype(bool)
        shift = rng.integers(-jitter_px, jitter_px + 1, (n_cl, 2))
        scale = rng.normal(1.0, calibration_jitter, (batch_size, b))
        if not augment:
            bg_rot[:] = st_rot[:] = 0
            bg_flip[:] = st_flip[:] = False
        scale = np.maximum(scale, MIN_CALIBRATION_FACTOR) if calibration_jitter > 0 else None
        sg_idx = np.zeros(0, np.int64)
        sg_orient = np.zeros(0, np.int64)
        sg_shift = np.zeros((0, 2), np.int64)
        if n_sg:
            sg_pool = self._indices("star groups", split)
            sg_idx = sg_pool[rng.integers(0, sg_pool.size, n_sg)]
            sg_orient = rng.integers(0, 4, n_sg) + 4 * rng.integers(0, 2, n_sg)
            sg_shift = rng.integers(-jitter_px, jitter_px + 1, (n_sg, 2))
            if not augment:
                sg_orient[:] = 0

        # the geometry as pixel maps, one gather per cube, one compose: no loop over images
        shift_all = np.zeros((batch_size, 2), dtype=np.int64)
        shift_all[n_bare:n_bg] = sg_shift
        shift_all[n_bg:] = shift
        n_comp = batch_size - n_bare  # star groups, then mocks: composed onto backgrounds
        kit = self._kit(device)
        ints = kit.put(
            np.concatenate(
                [bg_idx, bg_rot + 4 * bg_flip, shift_all[:, 0], shift_all[:, 1]]
                + [mock_idx, st_rot + 4 * st_flip, sg_idx, sg_orient, np.arange(n_comp)]
            ).astype(np.int64)
        )  # one transfer to the device
        bg_i, bg_o, dy, dx = ints[: 4 * batch_size].reshape(4, batch_size)
        rest = ints[4 * batch_size :]
        mock_i, st_o = rest[: 2 * n_cl].reshape(2, n_cl)
        sg_i, sg_o = rest[2 * n_cl : 2 * n_cl + 2 * n_sg].reshape(2, n_sg)
        rows = rest[2 * n_cl + 2 * n_sg :]
        # backgrounds oriented; those of the mocks rolled by -shift into the cluster's frame
        bg = _gather(
            kit.backgrounds, bg_i, _window_maps(kit.maps[0], kit.grid, -dy, -dx, bg_o), kit.bands
        )
        if scale is not None:
            bg = bg * kit.put(scale)[:, :, None, None]  # float64, as the factors
        stamps = _gather(kit.mocks, mock_i, kit.maps[1][st_o], kit.bands)
        rh_obs = self.rh_obs_px[mock_idx]
        if n_sg:  # a star is a point: r_h,obs is the PSF's
            groups = _gather(kit.star_groups, sg_i, kit.maps[1][sg_o], kit.bands)
            stamps = kit.cat([groups, stamps])
            rh_obs = np.concatenate([np.broadcast_to(self.psf_rh_px, (n_sg, b)), rh_obs])
        composed, _, per_band = compose(stamps, bg[n_bare:], kit.exptime, rng, kit.put(rh_obs))
        # the composed windows rolled back by +shift: the background returns to its place
        back = _window_maps(kit.maps[0], kit.grid, dy[n_bare:], dx[n_bare:])
        composed = _gather(composed.reshape(n_comp, b, -1), rows, back, kit.bands)
        images = kit.cat([kit.float32(bg[:n_bare]), composed])
        vis = np.zeros((batch_size, b))
        vis[n_bare:] = kit.host(per_band)
        sg_vis = np.full(batch_size, np.nan)
        sg_vis[n_bare:n_bg] = vis[n_bare:n_bg].max(axis=1)
        vis[n_bare:n_bg] = 0.0  # a star group is no cluster: its visibility target is 0

        is_cluster = np.arange(batch_size) >= n_bg
        table = pd.DataFrame({"is_cluster": is_cluster})
        mock_rows = np.full(batch_size, -1)
        mock_rows[n_bg:] = mock_idx
        for col in ("log_age_yr", "log_mass_msun", "av_mag", "log_rh_arcsec"):
            values = np.full(batch_size, np.nan)
            values[n_bg:] = self.mock_params[col].to_numpy(float)[mock_idx]
            table[col] = values
        table["visibility"] = vis.max(axis=1)
        for k, band in enumerate(self.bands):
            table[f"visibility_{band}"] = vis[:, k]
        table["mock_index"] = mock_rows
        table["background_index"] = bg_idx
        table["shift_y_px"] = shift_all[:, 0]
        table["shift_x_px"] = shift_all[:, 1]
        sg_rows = np.full(batch_size, -1)
        sg_rows[n_bare:n_bg] = sg_idx
        table["star_group_index"] = sg_rows
        table["star_group_visibility"] = sg_vis
        return images, table

    def make_batch(
        self,
        split: str,
        batch_size: int,
        rng: np.random.Generator,
        grids: ParameterGrids,
        *,
        augment: bool = True,
        jitter_px: int = 2,
        calibration_jitter: float = 0.0,
        device=None,
        head: str = "softmax",
        band_scale=None,
        star_group_fraction: float = 0.0,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One training batch: (x (N, B, S, S) float32 tensor, targets).

        x is :func:`preprocess` of the images of :meth:`draw` (same arguments; band_scale:
        the network's fixed input scales, None for the thesis' per-window ones;
        star_group_fraction: as :meth:`draw`, ignored by the regression head); the targets
        are on ``device`` (default CPU). On a CPU device (or None) the batch is composed in
        numpy and x is on the CPU; on another device (e.g. "cuda") it is composed there
        (:meth:`draw` with ``device``) and x is on that device.

        head "softmax" (thesis ch. 3): targets of :func:`batch_targets`; half of the batch are
        bare backgrounds (class 0, visibility bin 0, masked cluster heads). head
        "regression" (ch. 2): targets of :func:`regression_targets`, clusters only.
        """
        if head not in ("softmax", "regression"):
            raise ValueError(f"head must be 'softmax' or 'regression', got {head!r}")
        on_device = device is not None and torch.device(device).type != "cpu"
        images, table = self.draw(
            split,
            batch_size,
            rng,
            augment=augment,
            jitter_px=jitter_px,
            calibration_jitter=calibration_jitter,
            device=device if on_device else None,
            n_backgrounds=0 if head == "regression" else None,
            star_group_fraction=0.0 if head == "regression" else star_group_fraction,
        )
        x = preprocess(images, band_scale)
        x = x if on_device else torch.from_numpy(x)
        is_cluster = table["is_cluster"].to_numpy()
        if head == "regression":
            return x, regression_targets(table, is_cluster, device=device)
        return x, batch_targets(table, is_cluster, grids, device=device)


def _read_cubes(paths: Sequence, bands: Sequence[str], what: str) -> np.ndarray:
    cubes = []
    for path in paths:
        # missing, not FITS, truncated or failing its checksum: InputFileError telling
        # the user to delete the shard and rerun (Snakemake then rebuilds it)
        data, header = read_cube(path)
        found = [s.strip() for s in str(header.get("BANDS", "")).split(",") if s.strip()]
        if found and found != list(bands):
            raise InputFileError(
                f"{path}: {what} bands {found} differ from the configured bands {list(bands)}; "
                f"fix `bands` or {default_remedy(path)}"
            )
        if data.ndim != 4 or data.shape[1] != len(bands):
            raise InputFileError(
                f"{path}: expected an (N, {len(bands)}, S, S) {what} cube, got {data.shape}; "
                f"{default_remedy(path)}"
            )
        cube = np.asarray(data, dtype=np.float32)
        bad = ~np.isfinite(cube).all(axis=(1, 2, 3))
        if bad.any():
            raise InputFileError(
                f"{path}: {int(bad.sum())} of {len(cube)} {what} images hold NaN or infinite "
                f"pixels (first: image {int(np.argmax(bad))}); the network cannot train on them "
                f"— {default_remedy(path)}"
            )
        cubes.append(cube)
    return np.concatenate(cubes) if cubes else np.empty((0, len(bands), 0, 0), np.float32)


def load_training_data(
    mock_paths: Sequence[str | os.PathLike],
    background_paths: Sequence[str | os.PathLike],
    psf_paths: Sequence[str | os.PathLike],
    *,
    bands: Sequence[str],
    window_px: int,
    pixel_scale_arcsec: float,
    psf_oversampling: int,
    mock_split_fractions: Mapping[str, float] | None = None,
    star_group_paths: Sequence[str | os.PathLike] = (),
) -> TrainingData:
    """Read the mock and background shards and the PSFs into a :class:`TrainingData`.

    mock_paths / background_paths: the ``shard_{i}.fits`` cubes; each one's table is the
    ``.parquet`` beside it. psf_paths: one ePSF FITS per band, in ``bands`` order (read
    with :func:`~starclusters.mocks.psf.read_psfs`; their half-light radii give r_h,obs).
    Exposure times come from the background tables' ``exptime_s`` metadata. Mocks are split
    by :func:`split_by_seed` with ``mock_split_fractions``; so are the star groups of
    ``star_group_paths`` (star-group shards with their tables; none: no star groups).
    InputFileError naming the file if a shard has other bands or window size, or lacks its
    table or metadata.
    """
    from starclusters.mocks.psf import half_light_radius_px, read_psfs

    bands = list(bands)

    def tables(paths):
        out = []
        for p in paths:
            table_path = os.path.splitext(os.fspath(p))[0] + ".parquet"
            out.append((table_path, read_table(table_path)))
        return out

    mocks = _read_cubes(mock_paths, bands, "mock")
    backgrounds = _read_cubes(background_paths, bands, "background")
    for path, cube in (("mock shards", mocks), ("background shards", backgrounds)):
        if len(cube) == 0:
            raise InputFileError(f"{path}: none given or all empty; run their stage first")
        if cube.shape[-1] != window_px:
            raise InputFileError(
                f"{path}: cutouts are {cube.shape[-1]} px but window_px is {window_px}; "
                "rebuild them with the configured window_px"
            )
    mock_tables = tables(mock_paths)
    bg_tables = tables(background_paths)
    mock_params = pd.concat([t for _, t in mock_tables], ignore_index=True)
    bg_params = pd.concat([t for _, t in bg_tables], ignore_index=True)
    if len(mock_params) != len(mocks) or len(bg_params) != len(backgrounds):
        raise InputFileError(
            "the shard tables and cubes differ in length "
            f"(mocks {len(mock_params)} rows / {len(mocks)} stamps, backgrounds "
            f"{len(bg_params)} / {len(backgrounds)}); delete the shards and rerun their stages"
        )
    missing = [c for c in MOCK_COLUMNS if c not in mock_params]
    if missing:
        raise InputFileError(f"{mock_tables[0][0]}: lacks columns {missing}; rebuild the bank")
    for column in MOCK_COLUMNS:
        values = mock_params[column].to_numpy(float)
        if not np.isfinite(values).all():
            raise InputFileError(
                f"mock shard tables: column {column} has {int((~np.isfinite(values)).sum())} "
                "NaN or infinite values; delete the mock shards and rerun the bank"
            )
    if "split" not in bg_params:
        raise InputFileError(f"{bg_tables[0][0]}: lacks the split column; rerun backgrounds")
    exptimes = []
    for path, table in bg_tables:
        meta = table.attrs.get("meta", {}).get("exptime_s")
        if not isinstance(meta, Mapping) or any(b not in meta for b in bands):
            raise InputFileError(
                f"{path}: metadata exptime_s lacks bands {bands}; rerun the backgrounds stage"
            )
        exptimes.append([float(meta[b]) for b in bands])
    if any(e != exptimes[0] for e in exptimes):
        raise InputFileError(
            f"background shards disagree on exposure times {exptimes}; rebuild them together"
        )
    groups = group_params = group_split = None
    if star_group_paths:
        groups = _read_cubes(star_group_paths, bands, "star-group")
        group_tables = tables(star_group_paths)
        group_params = pd.concat([t for _, t in group_tables], ignore_index=True)
        if groups.shape[-1] != window_px or len(group_params) != len(groups):
            raise InputFileError(
                f"{group_tables[0][0]}: the star-group shards hold {len(groups)} stamps of "
                f"{groups.shape[-1]} px and {len(group_params)} table rows (window_px "
                f"{window_px}); delete them and rerun the rule star_group_shard"
            )
        if "seed" not in group_params:
            raise InputFileError(f"{group_tables[0][0]}: lacks the seed column; rebuild it")
        group_split = split_by_seed(group_params["seed"], mock_split_fractions)
    epsfs, _ = read_psfs(psf_paths, bands, pixel_scale_arcsec, psf_oversampling)
    psf_rh = [half_light_radius_px(e, psf_oversampling) for e in epsfs]
    data = TrainingData(
        bands=tuple(bands),
        pixel_scale_arcsec=pixel_scale_arcsec,
        exptime_s=np.array(exptimes[0]),
        psf_rh_px=np.array(psf_rh),
        mocks=mocks,
        mock_params=mock_params,
        mock_split=split_by_seed(mock_params["seed"], mock_split_fractions),
        backgrounds=backgrounds,
        background_split=bg_params["split"].to_numpy(),
        star_groups=groups,
        star_group_params=group_params,
        star_group_split=group_split,
    )
    log.info("training data: %s (window %d px)", data.counts(), data.window_px)
    return data


def blob_training_data(
    n_mocks: int,
    n_backgrounds: int,
    *,
    window_px: int = 32,
    seed: int = 5,
    sigma_px: tuple[float, float] = (1.0, 3.0),
    log_flux: tuple[float, float] = (0.0, 1.5),
    sky_counts_s: Sequence[float] | None = None,
    exptime_s: Sequence[float] = (1200.0, 1000.0, 1000.0),
    split: str | None = None,
) -> TrainingData:
    """A :class:`TrainingData` of Gaussian-blob "clusters" on noise skies, for tests and
    benchmarks (no astrophysics: the real bank comes from the mock stage).

    n_mocks blobs (3 bands F336W/F438W/F814W, window_px square, centred on pixel
    (S//2, S//2)) with σ uniform in ``sigma_px`` px and log10 flux per band uniform in
    ``log_flux`` (counts/s), parameters uniform over the thesis ranges; n_backgrounds
    skies: Gaussian N(0.05, 0.01) counts/s, or Poisson skies of ``sky_counts_s`` (3,)
    counts/s observed for ``exptime_s``. split: every image in that split, or None for
    3/4 train, 1/8 val, 1/8 test in row order. Reproducible from ``seed``.
    """
    rng = np.random.default_rng(seed)
    params = pd.DataFrame(
        {
            "log_age_yr": rng.uniform(6.6, 10.1, n_mocks),
            "log_mass_msun": rng.uniform(3.5, 5.5, n_mocks),
            "av_mag": rng.uniform(0.0, 3.0, n_mocks),
            "log_rh_arcsec": rng.uniform(-1.4, -0.4, n_mocks),
            "seed": rng.integers(0, 2**63, n_mocks),
        }
    )
    shape = (n_backgrounds, 3, window_px, window_px)
    if sky_counts_s is None:
        backgrounds = rng.normal(0.05, 0.01, shape)
    else:
        t = np.asarray(exptime_s, float)[None, :, None, None]
        backgrounds = rng.poisson(np.asarray(sky_counts_s, float)[None, :, None, None] * t, shape)
        backgrounds = backgrounds / t
    y, x = np.mgrid[0:window_px, 0:window_px] - window_px // 2
    sigma = rng.uniform(*sigma_px, n_mocks)
    flux = 10 ** rng.uniform(*log_flux, (n_mocks, 3))
    profile = np.exp(-0.5 * (x**2 + y**2)[None] / sigma[:, None, None] ** 2)
    profile /= profile.sum(axis=(1, 2), keepdims=True)

    def splits(n):
        if split is not None:
            return np.full(n, split)
        return np.array(["train"] * (n - 2 * (n // 8)) + ["val"] * (n // 8) + ["test"] * (n // 8))

    return TrainingData(
        bands=("F336W", "F438W", "F814W"),
        pixel_scale_arcsec=0.04,
        exptime_s=list(exptime_s),
        psf_rh_px=[1.0, 1.0, 1.3],
        mocks=(flux[:, :, None, None] * profile[:, None]).astype(np.float32),
        mock_params=params,
        mock_split=splits(n_mocks),
        backgrounds=backgrounds.astype(np.float32),
        background_split=splits(n_backgrounds),
    )
