"""Mass function and age distribution fitted together by maximum likelihood, with each
cluster's detection probability inside the likelihood instead of a hand-set mass cut.

The intrinsic population is dN/dM ∝ M^β exp(−M/M*) on [M_lo, M_hi] (M in M☉; M* = ∞ is
the power law) times dN/dt ∝ t^γ on [t_lo, t_hi] (t in yr; dN/dlog t ∝ t^(γ+1)), mass
and age independent. A cluster is detected with probability C_i(m, t) (m = log10 M/M☉,
t = log10 t/yr), which the caller evaluates on a grid with that cluster's own nuisances
(A_V, r_h, background): the likelihood is conditional on them, as in the LEGUS/PHAT
completeness work. The derived values scatter around the truth with Gaussian errors σ_m,
σ_t (dex; 0 = none). The sample is the clusters with C_i(m_o, t_o) ≥ c_min at their derived
values, so cluster i's observed values have the density

    p_i(m_o, t_o | θ) = [K ∗ (φ_θ ψ_γ C_i)](m_o, t_o) / N_i(θ)   on S_i = {C_i ≥ c_min},

N_i the integral of the numerator over S_i (and over the grid box, see below).

Discretisation (all on the caller's grid, which need not be uniform):

* F_i = φ ψ C_i is represented by its node values and bilinear (hat-function)
  interpolation; the population's range [M_lo, M_hi] × [t_lo, t_hi] cuts it exactly.
* The kernel is the exact integral of each hat function, cut to the range, against the
  Gaussian (:func:`_hat_gauss`): a matrix from truth nodes to observed nodes, exact for any
  σ ≥ 0 (σ → 0 gives the identity), so no ``gaussian_filter1d`` edge mode is needed.
  Observed values off the grid are not modelled: what scatters off the grid counts as
  unobserved, exactly as the sample cut drops clusters off the grid (the contract below).
* The observed density at the nodes is interpolated bilinearly — at the data for the
  numerator, and under the integral for N_i, where the region S_i (bounded by the bilinear
  interpolant of C_i crossing c_min) is integrated exactly along mass and with
  :data:`AGE_SUBLINES` midpoint lines per age cell (:func:`_region_integrals`). Each
  p_i is therefore a density that integrates to one over S_i to that accuracy.

Everything that does not depend on θ is computed once, so −ln L is a contraction of an
(N, n_mass, n_age) tensor with φ ⊗ ψ for the N_i and of each cluster's kernel window for
the numerators (the intrinsic normalisations cancel between the two), with exact
gradient and Hessian. N = 2000 on a 60 × 40 grid (measured, one core): 3 ms per −ln L
(9 ms with σ_m = 0.15, σ_t = 0.3), ~0.8 s of set-up, 1–1.6 s per fit with profile
errors. Minimisation: Newton steps with the exact Hessian, L-BFGS-B where they fail.
Uncertainties are profile-likelihood intervals (−ln L within
:data:`~starclusters.analysis.mass_function.DELTA_NLL_1SIGMA` of its minimum, the other
parameters refitted from a Hessian-extrapolated start), or from the Hessian on request
(symmetric; poor where M* is barely bounded).

Sample contract: give :func:`fit_population` the catalogued clusters with their grids; it
keeps those :func:`sample_mask` selects (finite, inside the grid box, C_i ≥ c_min at the
derived values by the same bilinear interpolation, and inside the population range on an
axis without scatter) and logs how many it dropped. Any histogram compared with
:func:`expected_counts` must use the same mask.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.optimize
import scipy.special
from threadpoolctl import threadpool_limits

from starclusters.analysis.mass_function import DELTA_NLL_1SIGMA, LOG_MSTAR_MAX, SLOPE_RANGE

log = logging.getLogger(__name__)

LN10 = math.log(10.0)
#: Search range of the age index γ (dN/dt ∝ t^γ).
AGE_INDEX_RANGE = (-4.0, 2.0)
#: log10 M* is searched from this far below the top of the mass range (and at most 1 dex
#: below its bottom, as in mass_function): exp(−10^2.5) still fits in a float.
LOG_MSTAR_BELOW_TOP = 2.5
#: Midpoint lines per age cell when integrating over the selected region S_i.
AGE_SUBLINES = 2
#: Clusters per block in the region integrals (small blocks stay in cache: 3× faster).
_BLOCK = 32
MODELS = ("power_law", "schechter")


@dataclass(frozen=True)
class PopulationFit:
    """One maximum-likelihood fit of dN/dM ∝ M^β exp(−M/M*) × dN/dt ∝ t^γ.

    slope β; log_mstar_msun = log10(M*/M☉) (inf for the power law); age_index γ; each with
    its 68 % errors as positive distances to the interval ends (``*_err_lo``,
    ``*_err_hi``): 0 where the parameter was fixed, inf on a side the data do not bound
    (with Hessian errors, NaN on the other side of a parameter left on its bound).
    n_clusters fitted (n_dropped left out by :func:`sample_mask`) in the population range
    [log_mass_lo_msun, log_mass_hi_msun] × [log_age_lo_yr, log_age_hi_yr]; c_min, the
    scatter sigma_log_mass / sigma_log_age (dex) used; nll the minimum of −ln L (up to a
    θ-independent constant); uncertainty "profile" or "hessian".
    """

    model: str
    slope: float
    slope_err_lo: float
    slope_err_hi: float
    log_mstar_msun: float
    log_mstar_err_lo: float
    log_mstar_err_hi: float
    age_index: float
    age_index_err_lo: float
    age_index_err_hi: float
    n_clusters: int
    n_dropped: int
    c_min: float
    sigma_log_mass: float
    sigma_log_age: float
    log_mass_lo_msun: float
    log_mass_hi_msun: float
    log_age_lo_yr: float
    log_age_hi_yr: float
    nll: float
    converged: bool
    uncertainty: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def unfitted(
        cls,
        model: str,
        n_dropped: int,
        c_min: float,
        sigma_log_mass: float,
        sigma_log_age: float,
        log_mass_grid,
        log_age_grid,
    ) -> PopulationFit:
        """The fit that could not be made (too few usable clusters): every value NaN, no
        cluster fitted, ``n_dropped`` left out, the population range the grids'."""
        nan = math.nan
        return cls(
            model=model,
            **dict.fromkeys(("slope", "slope_err_lo", "slope_err_hi"), nan),
            **dict.fromkeys(("log_mstar_msun", "log_mstar_err_lo", "log_mstar_err_hi"), nan),
            **dict.fromkeys(("age_index", "age_index_err_lo", "age_index_err_hi"), nan),
            n_clusters=0,
            n_dropped=int(n_dropped),
            c_min=float(c_min),
            sigma_log_mass=float(sigma_log_mass),
            sigma_log_age=float(sigma_log_age),
            log_mass_lo_msun=float(log_mass_grid[0]),
            log_mass_hi_msun=float(log_mass_grid[-1]),
            log_age_lo_yr=float(log_age_grid[0]),
            log_age_hi_yr=float(log_age_grid[-1]),
            nll=nan,
            converged=False,
            uncertainty="none",
        )


def _one_blas_thread(func):
    """Run func with one BLAS thread: its products are tall and thin, bound by memory, so
    one thread is as fast, and several are much slower on a shared node (measured: 12 ms
    against 1.3 ms for one evaluation at N = 800). threadpoolctl comes with scikit-learn."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper


# --- one-dimensional building blocks


def _hat_values(grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Hat functions of the grid at the points: (P, n), each row the linear-interpolation
    weights (two non-zero); zero rows for points outside the grid."""
    w = np.zeros((points.size, grid.size))
    inside = (points >= grid[0]) & (points <= grid[-1])
    j = np.clip(np.searchsorted(grid, points, side="right") - 1, 0, grid.size - 2)
    u = (points - grid[j]) / (grid[j + 1] - grid[j])
    rows = np.flatnonzero(inside)
    w[rows, j[rows]] = 1.0 - u[rows]
    w[rows, j[rows] + 1] = u[rows]
    return w


def _hat_gauss(
    grid: np.ndarray, centres: np.ndarray, sigma: float, lo: float, hi: float
) -> np.ndarray:
    """∫_lo^hi hat_j(x) N(c_p − x; σ) dx, (P, n): the hat functions (piecewise-linear
    interpolation) cut to [lo, hi] and smoothed by a Gaussian of σ (same units as the grid),
    exact; σ = 0 gives the hats at the centres (zero outside [lo, hi])."""
    centres = np.asarray(centres, float)
    if sigma == 0.0:
        w = _hat_values(grid, centres)
        w[(centres < lo) | (centres > hi)] = 0.0
        return w
    x0, x1 = grid[:-1], grid[1:]
    a, b = np.clip(x0, lo, hi), np.clip(x1, lo, hi)  # each cell cut to the range
    c = centres[:, None]
    za, zb = (a - c) / sigma, (b - c) / sigma
    mass = scipy.special.ndtr(zb) - scipy.special.ndtr(za)  # ∫ N dx over the cut cell
    # ∫ (x − c) N(x − c; σ) dx = σ [pdf(za) − pdf(zb)]
    first = sigma * (np.exp(-0.5 * za**2) - np.exp(-0.5 * zb**2)) / math.sqrt(2.0 * math.pi)
    h = x1 - x0
    # on a cell, hat_left = (x1 − x)/h = ((x1 − c) − (x − c))/h, hat_right = ((x − c) − (x0 − c))/h
    left = ((x1 - c) * mass - first) / h
    right = (first - (x0 - c) * mass) / h
    w = np.zeros((centres.size, grid.size))
    w[:, :-1] += left
    w[:, 1:] += right
    return w


def _kernel_matrix(grid: np.ndarray, sigma: float, lo: float, hi: float) -> np.ndarray:
    """K[j', j]: the observed density at node j' from the truth hat j cut to [lo, hi]; the
    identity without scatter (the range cut then lives in the region integrals)."""
    if sigma == 0.0:
        return np.eye(grid.size)
    return _hat_gauss(grid, grid, sigma, lo, hi)


def _node_span(grid: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """First and last node of the cells that overlap [lo, hi] (last ≤ first if none)."""
    first = max(int(np.searchsorted(grid, lo, side="right")) - 1, 0)
    last = min(int(np.searchsorted(grid, hi, side="left")), grid.size - 1)
    return (first, last) if hi > lo else (first, first)


def _region_integrals(
    completeness: np.ndarray,
    log_mass_grid: np.ndarray,
    log_age_grid: np.ndarray,
    c_min: float,
    mass_clip: tuple[float, float],
    age_clip: tuple[float, float],
) -> np.ndarray:
    """G[i, j, k] = ∫∫ hat_j(m) hat_k(t) 1[C_i(m, t) ≥ c_min] over mass_clip × age_clip
    (dex²), C_i the bilinear interpolant of completeness (N, n_mass, n_age).

    Along mass C_i is linear in each cell, so the selected part of a cell is an interval
    found exactly; across age, AGE_SUBLINES midpoint lines per cell (cut to age_clip).
    """
    out = np.zeros(completeness.shape)
    # only the cells that overlap the clip contribute: work on that block of nodes
    j0, j1 = _node_span(log_mass_grid, *mass_clip)
    k0, k1 = _node_span(log_age_grid, *age_clip)
    if j1 <= j0 or k1 <= k0:
        return out
    completeness = completeness[:, j0 : j1 + 1, k0 : k1 + 1]
    x, y = log_mass_grid[j0 : j1 + 1], log_age_grid[k0 : k1 + 1]
    block = out[:, j0 : j1 + 1, k0 : k1 + 1]  # a view: filled below
    dx = np.diff(x)
    # each mass cell's part inside mass_clip, as fractions u of the cell
    ua_clip = np.clip((mass_clip[0] - x[:-1]) / dx, 0.0, 1.0)
    ub_clip = np.clip((mass_clip[1] - x[:-1]) / dx, 0.0, 1.0)
    dy = np.diff(y)
    va = np.clip((age_clip[0] - y[:-1]) / dy, 0.0, 1.0)
    vb = np.clip((age_clip[1] - y[:-1]) / dy, 0.0, 1.0)
    for s in range(AGE_SUBLINES):
        v = va + (s + 0.5) / AGE_SUBLINES * (vb - va)  # (n_age − 1,)
        weight = (vb - va) * dy / AGE_SUBLINES  # dex of age each line stands for
        line = (1.0 - v) * completeness[:, :, :-1] + v * completeness[:, :, 1:]
        c0, c1 = line[:, :-1], line[:, 1:]  # (N, n_mass − 1, n_age − 1)
        above0, above1 = c0 >= c_min, c1 >= c_min
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = (c_min - c0) / (c1 - c0)
        ua = np.where(above0, 0.0, np.where(above1, cross, 1.0))
        ub = np.where(above1, 1.0, np.where(above0, cross, 0.0))
        ua = np.maximum(ua, ua_clip[None, :, None])
        ub = np.maximum(np.minimum(ub, ub_clip[None, :, None]), ua)
        sq = 0.5 * (ub**2 - ua**2)
        to_left = (ub - ua - sq) * dx[None, :, None]  # ∫ hat_j over the cell's selected part
        to_right = sq * dx[None, :, None]
        wl, wr = (1.0 - v) * weight, v * weight  # age hats on the line
        block[:, :-1, :-1] += to_left * wl
        block[:, 1:, :-1] += to_right * wl
        block[:, :-1, 1:] += to_left * wr
        block[:, 1:, 1:] += to_right * wr
    return out


# --- inputs and the sample


def _grid(name: str, grid) -> np.ndarray:
    g = np.asarray(grid, float)
    if g.ndim != 1 or g.size < 2 or not np.all(np.isfinite(g)) or not np.all(np.diff(g) > 0):
        raise ValueError(f"{name} must be a 1-D, finite, strictly increasing grid of ≥ 2 values")
    return g


def _range(name: str, value, grid: np.ndarray) -> tuple[float, float]:
    if value is None:
        return float(grid[0]), float(grid[-1])
    lo, hi = (float(v) for v in value)
    if not (grid[0] <= lo < hi <= grid[-1]):
        raise ValueError(
            f"{name} = ({lo}, {hi}) must satisfy lo < hi inside the grid [{grid[0]}, {grid[-1]}]"
        )
    return lo, hi


def _sigma(name: str, value) -> float:
    s = float(value)
    if not (np.isfinite(s) and s >= 0):
        raise ValueError(f"{name} must be a finite scatter ≥ 0 dex, got {value}")
    return s


def _check_inputs(log_mass_msun, log_age_yr, completeness, log_mass_grid, log_age_grid):
    """Arrays checked for shape and range; ValueError naming the argument otherwise."""
    m = np.asarray(log_mass_msun, float)
    t = np.asarray(log_age_yr, float)
    if m.ndim != 1:
        raise ValueError(f"log_mass_msun must be 1-D (N,), got shape {m.shape}")
    if m.size == 0:
        raise ValueError("log_mass_msun is empty: the fit needs a sample of clusters")
    if t.shape != m.shape:
        raise ValueError(f"log_age_yr has shape {t.shape}; log_mass_msun has {m.shape}")
    x = _grid("log_mass_grid", log_mass_grid)
    y = _grid("log_age_grid", log_age_grid)
    c = np.asarray(completeness, float)
    if c.shape != (m.size, x.size, y.size):
        raise ValueError(
            f"completeness has shape {c.shape}; expected (N, n_mass, n_age) = "
            f"{(m.size, x.size, y.size)} from log_mass_msun, log_mass_grid and log_age_grid"
        )
    if not np.all((c >= 0.0) & (c <= 1.0)):
        raise ValueError("completeness must be a probability in [0, 1] everywhere (no NaN)")
    return m, t, c, x, y


def completeness_at(completeness, log_mass_grid, log_age_grid, log_mass_msun, log_age_yr):
    """Each cluster's completeness at its own values, (N,): bilinear interpolation of
    completeness (N, n_mass, n_age) on log_mass_grid (n_mass,) × log_age_grid (n_age,) at
    log_mass_msun, log_age_yr (N,) (log10 M☉, log10 yr); NaN off the grid. This is the C
    that :func:`sample_mask` compares with c_min."""
    m, t, c, x, y = _check_inputs(
        log_mass_msun, log_age_yr, completeness, log_mass_grid, log_age_grid
    )
    wm, wt = (
        _hat_values(x, np.nan_to_num(m, nan=-np.inf)),
        _hat_values(y, np.nan_to_num(t, nan=-np.inf)),
    )
    out = np.einsum("ij,ijk,ik->i", wm, c, wt)
    inside = (m >= x[0]) & (m <= x[-1]) & (t >= y[0]) & (t <= y[-1])
    return np.where(inside, out, np.nan)


def sample_mask(
    log_mass_msun,
    log_age_yr,
    completeness,
    log_mass_grid,
    log_age_grid,
    *,
    c_min: float = 0.1,
    sigma_log_mass: float = 0.0,
    sigma_log_age: float = 0.0,
    mass_range=None,
    age_range=None,
) -> np.ndarray:
    """The clusters the fit uses, (N,) bool: finite values inside the grid box with
    C_i ≥ c_min there (:func:`completeness_at`), and inside mass_range (age_range), log10
    M☉ (yr), on an axis without scatter, where the model has no density outside it."""
    m, t, c, x, y = _check_inputs(
        log_mass_msun, log_age_yr, completeness, log_mass_grid, log_age_grid
    )
    mlo, mhi = _range("mass_range", mass_range, x)
    tlo, thi = _range("age_range", age_range, y)
    if _sigma("sigma_log_mass", sigma_log_mass) > 0:
        mlo, mhi = x[0], x[-1]
    if _sigma("sigma_log_age", sigma_log_age) > 0:
        tlo, thi = y[0], y[-1]
    with np.errstate(invalid="ignore"):
        inside = (m >= mlo) & (m <= mhi) & (t >= tlo) & (t <= thi)
        return inside & (completeness_at(c, x, y, m, t) >= c_min)


# --- the likelihood


def _normaliser_tensor(
    c, x, y, c_min, sigma_m, sigma_t, mass_range, age_range, mass_bin=None, age_bin=None
) -> np.ndarray:
    """B (N, n_mass, n_age) with N_i = Σ_jk B_ijk φ_j ψ_k: C_i times the probability mass
    each truth hat sends into S_i (observed values in mass_bin × age_bin, default all).

    N_i = ∫_{S_i} g_i with g_i = Σ_j'k' g_i(j', k') hat_j' hat_k' the interpolated observed
    density and g_i(j', k') = Σ_jk K_m[j', j] K_t[k', k] F_ijk, so B_i = C_i ∘ (K_mᵀ G_i K_t).
    """
    # without scatter the range cut is on the observed values (the same values)
    mass_clip = mass_range if sigma_m == 0 else (x[0], x[-1])
    age_clip = age_range if sigma_t == 0 else (y[0], y[-1])
    if mass_bin is not None:
        mass_clip = (max(mass_clip[0], mass_bin[0]), min(mass_clip[1], mass_bin[1]))
    if age_bin is not None:
        age_clip = (max(age_clip[0], age_bin[0]), min(age_clip[1], age_bin[1]))
    out = np.zeros(c.shape)
    if mass_clip[0] >= mass_clip[1] or age_clip[0] >= age_clip[1]:
        return out
    k_m = _kernel_matrix(x, sigma_m, *mass_range)
    k_t = _kernel_matrix(y, sigma_t, *age_range)
    for start in range(0, c.shape[0], _BLOCK):
        i = slice(start, min(start + _BLOCK, c.shape[0]))
        g = _region_integrals(c[i], x, y, c_min, mass_clip, age_clip)
        if sigma_m > 0:
            g = np.matmul(k_m.T, g)
        if sigma_t > 0:
            g = np.matmul(g, k_t)
        out[i] = c[i] * g
    return out


class _Likelihood:
    """−ln L(β, log10 M*, γ) with its gradient and Hessian for a fixed sample.

    The numerators use each cluster's window of the grid where the kernel is non-zero
    (2 × 2 nodes without scatter; ~±7σ with it); the normalisers B_i the whole grid,
    stored (n_age, N·n_mass) so one matrix product with the age columns serves them all.
    """

    def __init__(self, m, t, c, x, y, c_min, sigma_m, sigma_t, mass_range, age_range):
        self.x, self.y = x, y
        self.n = n = m.size
        a = _hat_values(x, m) @ _kernel_matrix(x, sigma_m, *mass_range)  # (N, n_mass)
        b = _hat_values(y, t) @ _kernel_matrix(y, sigma_t, *age_range)  # (N, n_age)
        self.jw, self.kw = _window(a), _window(b)  # (N, W_m), (N, W_t) node indices
        rows = np.arange(n)[:, None, None]
        self.a_win = (
            np.take_along_axis(a, self.jw, 1)[:, :, None]
            * np.take_along_axis(b, self.kw, 1)[:, None, :]
            * c[rows, self.jw[:, :, None], self.kw[:, None, :]]
        )  # (N, W_m, W_t)
        norm = _normaliser_tensor(c, x, y, c_min, sigma_m, sigma_t, mass_range, age_range)
        self.b_flat_t = np.ascontiguousarray(norm.reshape(n * x.size, y.size).T)

    @staticmethod
    def _terms(u, vectors, order):
        """s (N,), ∂ ln s/∂θ (N, 3), ∂² ln s/∂θ² (N, 3, 3) from the age-contracted tensor
        u (order + 1, N, n) and the mass vectors (n, 6) or (N, n, 6) on the same nodes
        (φ times 1, ∂_β, ∂_M*, ∂_ββ, ∂_βM*, ∂_M*M* of ln φ terms, :meth:`__call__`)."""
        if vectors.ndim == 2:
            r = [u[c] @ vectors for c in range(order + 1)]
        else:
            r = [np.einsum("in,inv->iv", u[c], vectors) for c in range(order + 1)]
        s = r[0][:, 0]
        if order == 0 or not np.all(s > 0):
            return s, None, None
        # ∂s/∂β, ∂s/∂log M* from the mass vectors; ∂s/∂γ from the ψ·ln t age column
        g = np.column_stack([r[0][:, 1], r[0][:, 2], r[1][:, 0]]) / s[:, None]
        if order == 1:
            return s, g, None
        hs = np.empty((s.size, 3, 3))
        hs[:, 0, 0], hs[:, 0, 1], hs[:, 1, 1] = r[0][:, 3], r[0][:, 4], r[0][:, 5]
        hs[:, 0, 2], hs[:, 1, 2], hs[:, 2, 2] = r[1][:, 1], r[1][:, 2], r[2][:, 0]
        hs[:, 1, 0], hs[:, 2, 0], hs[:, 2, 1] = hs[:, 0, 1], hs[:, 0, 2], hs[:, 1, 2]
        return s, g, hs / s[:, None, None] - g[:, :, None] * g[:, None, :]

    def density(self, theta) -> np.ndarray:
        """p_i at each cluster's derived values (N,), dex⁻²: numerator / N_i."""
        phi, psi = _shapes(self.x, self.y, *theta)
        b = (psi @ self.b_flat_t).reshape(self.n, self.x.size) @ phi
        a = np.einsum("ipq,ip,iq->i", self.a_win, phi[self.jw], psi[self.kw])
        return a / b

    def __call__(self, theta, order: int = 1):
        """(−ln L, gradient (3,), Hessian (3, 3)) at θ = (β, log10 M*, γ); log10 M* = inf
        is the power law. Gradient and Hessian are None below the order asked for."""
        beta, log_mstar, gamma = theta
        lm, lt = LN10 * self.x, LN10 * self.y
        phi, psi = _shapes(self.x, self.y, beta, log_mstar, gamma)
        d = np.zeros_like(lm) if math.isinf(log_mstar) else LN10 * 10.0 ** (self.x - log_mstar)
        cols = np.stack([psi, psi * lt, psi * lt**2][: order + 1])  # (order + 1, n_age)
        u_b = (cols @ self.b_flat_t).reshape(order + 1, self.n, self.x.size)
        # φ and its θ-derivatives: ∂ ln φ/∂β = ln M, ∂ ln φ/∂log M* = d, ∂d/∂log M* = −ln 10 d
        vectors = phi[:, None] * np.column_stack(
            [np.ones_like(lm), lm, d, lm**2, lm * d, d**2 - LN10 * d]
        )  # (n_mass, 6)
        u_a = np.moveaxis(self.a_win @ cols.T[self.kw], -1, 0)  # (order + 1, N, W_m)
        s_a, g_a, h_a = self._terms(u_a, vectors[self.jw], order)
        s_b, g_b, h_b = self._terms(u_b, vectors, order)
        if not (np.all(s_a > 0) and np.all(s_b > 0)):
            return math.inf, (np.full(3, np.nan) if order else None), None
        nll = float(np.sum(np.log(s_b)) - np.sum(np.log(s_a)))
        grad = None if order == 0 else g_b.sum(0) - g_a.sum(0)
        hess = None if order < 2 else h_b.sum(0) - h_a.sum(0)
        return nll, grad, hess


def _window(weights: np.ndarray) -> np.ndarray:
    """(N, W) indices of a common-width window of nodes that holds every non-negligible
    weight of each row of weights (N, n) (> 1e-13 of the row's largest)."""
    big = weights > 1e-13 * weights.max(axis=1, keepdims=True)
    n = weights.shape[1]
    first = np.argmax(big, axis=1)
    last = n - 1 - np.argmax(big[:, ::-1], axis=1)
    width = int((last - first).max()) + 1
    start = np.clip(first, 0, n - width)
    return start[:, None] + np.arange(width)


class _Problem:
    """Minimisation of −ln L over the free parameters, the others held fixed."""

    def __init__(self, like: _Likelihood, free: list[int], bounds: list[tuple[float, float]]):
        self.like, self.free = like, free
        self.lo = np.array([b[0] for b in bounds])
        self.hi = np.array([b[1] for b in bounds])

    def minimise(self, start: np.ndarray, fixed: dict[int, float]):
        """(θ (3,), −ln L, success) minimised over the free indices not in `fixed`: Newton
        steps with the exact Hessian (a warm start converges in a few), L-BFGS-B where
        Newton cannot go on (Hessian not positive definite, no descent)."""
        theta = np.clip(np.asarray(start, float), self.lo, self.hi)
        for k, v in fixed.items():
            theta[k] = v
        idx = np.array([k for k in self.free if k not in fixed], dtype=int)
        if idx.size == 0:
            return theta, self.like(theta, 0)[0], True
        newton = self._newton(theta, idx)
        return newton if newton is not None else self._lbfgsb(theta, idx)

    def _newton(self, theta, idx, max_iter: int = 30):
        lo, hi = self.lo[idx], self.hi[idx]
        nll, grad, hess = self.like(theta, 2)
        for _ in range(max_iter):
            if not np.isfinite(nll):
                return None
            g, h = grad[idx], hess[np.ix_(idx, idx)]
            x = theta[idx]
            # a parameter on its bound with the gradient pushing outward stays there
            move = ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))
            if not move.any():
                return theta, nll, True
            try:
                step = -scipy.linalg.cho_solve(
                    scipy.linalg.cho_factor(h[np.ix_(move, move)]), g[move]
                )
            except np.linalg.LinAlgError:
                return None
            decrement = -float(g[move] @ step)  # twice the predicted fall of −ln L
            if decrement < 1e-9:
                return theta, nll, True
            for t in 0.5 ** np.arange(12):  # backtracking to the Armijo condition
                trial = theta.copy()
                trial[idx[move]] = np.clip(x[move] + t * step, lo[move], hi[move])
                result = self.like(trial, 2)
                if result[0] <= nll - 1e-4 * t * decrement:
                    break
            else:
                return None
            theta, (nll, grad, hess) = trial, result
        return None

    def _lbfgsb(self, theta, idx):
        def fun(p):
            full = theta.copy()
            full[idx] = p
            nll, grad, _ = self.like(full, 1)
            if not np.isfinite(nll):
                return 1e300, np.zeros(idx.size)
            return nll, grad[idx]

        res = scipy.optimize.minimize(
            fun,
            theta[idx],
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(self.lo[idx], self.hi[idx], strict=True)),
            options={"maxiter": 500},
        )
        theta = theta.copy()
        theta[idx] = res.x
        return theta, float(res.fun), bool(res.success)


class _Profile:
    """−ln L minimised over the other free parameters with parameter k held at v (cached).

    Each fit starts from the nearest point profiled so far, moved along the regression of
    the others on parameter k from the Hessian at the optimum, so Newton needs few steps.
    """

    def __init__(self, problem: _Problem, hess, inside, k: int, theta, nll: float):
        self.problem, self.k = problem, k
        # the regression uses the parameters off their bounds (the others start in place)
        self.others = [o for o in inside if o != k]
        self.slope = np.zeros(3)
        if self.others:
            try:
                h = hess[np.ix_(self.others, self.others)]
                self.slope[self.others] = -np.linalg.solve(h, hess[self.others, k])
            except np.linalg.LinAlgError:
                pass
            if not np.all(np.isfinite(self.slope)):
                self.slope[:] = 0.0
        self.points = {float(theta[k]): (nll, np.asarray(theta, float))}

    def __call__(self, v: float) -> float:
        v = float(v)
        if v not in self.points:
            near = min(self.points, key=lambda p: abs(p - v))
            start = self.points[near][1] + self.slope * (v - near)
            point, value, _ = self.problem.minimise(start, {self.k: v})
            self.points[v] = (value, point)
        return self.points[v][0]


def _profile_side(
    profile, best: float, best_nll: float, edge: float, step: float, direction: float
) -> float:
    """Where profile(x) = best_nll + DELTA_NLL_1SIGMA between best and edge, on the side
    direction (−1 below, +1 above; ±inf where it stays below, or best is on the edge):
    steps of `step` (doubling) bracket the crossing, then brentq on
    sqrt(2 ΔNLL), nearly linear in x, so few nested fits are needed."""
    room = abs(edge - best)
    if room == 0:
        return direction * math.inf

    def z(x):
        return math.sqrt(max(2.0 * (profile(x) - best_nll), 0.0)) - math.sqrt(
            2.0 * DELTA_NLL_1SIGMA
        )

    prev, dist = best, min(step, room)
    while True:
        x = best + direction * dist
        if z(x) >= 0:
            a, b = sorted((prev, x))
            return float(scipy.optimize.brentq(z, a, b, xtol=0.01 * step, rtol=1e-6))
        if dist >= room:
            return direction * math.inf
        prev, dist = x, min(2.0 * dist, room)


def _errors(problem: _Problem, theta, nll: float, bounds, uncertainty: str):
    """{parameter index: (err_lo, err_hi)} at the optimum θ (3,): profile-likelihood or
    Hessian errors of the free parameters, (0, 0) for the fixed ones."""
    like, free = problem.like, problem.free
    _, _, hess = like(theta, 2)
    # Hessian errors of the parameters inside their bounds (one on a bound, M* → ∞ say,
    # held there: its flat direction would spoil the inverse)
    inside = [k for k in free if bounds[k][0] < theta[k] < bounds[k][1]]
    sd = dict.fromkeys(free, math.nan)
    try:
        var = np.diag(np.linalg.inv(hess[np.ix_(inside, inside)]))
        sd.update({k: math.sqrt(v) for k, v in zip(inside, var, strict=True) if v > 0})
    except np.linalg.LinAlgError:
        pass

    errs = {k: (0.0, 0.0) for k in range(3)}
    for k in free:
        lo_b, hi_b = bounds[k]
        if uncertainty == "hessian":
            # on a bound: open on that side, no curvature to say how far the other goes
            errs[k] = (
                math.inf if theta[k] <= lo_b else (math.nan if theta[k] >= hi_b else sd[k]),
                math.inf if theta[k] >= hi_b else (math.nan if theta[k] <= lo_b else sd[k]),
            )
            continue
        width = hi_b - lo_b
        step = min(sd[k], width) if sd[k] > 0 else 0.1 * width  # NaN > 0 is False
        profile = _Profile(problem, hess, inside, k, theta, nll)
        lo_v = _profile_side(profile, theta[k], nll, lo_b, step, -1.0)
        hi_v = _profile_side(profile, theta[k], nll, hi_b, step, 1.0)
        errs[k] = (theta[k] - lo_v, hi_v - theta[k])

    return errs


@_one_blas_thread
def fit_population(
    log_mass_msun,
    log_age_yr,
    completeness,
    log_mass_grid,
    log_age_grid,
    *,
    model: str = "schechter",
    sigma_log_mass: float = 0.0,
    sigma_log_age: float = 0.0,
    c_min: float = 0.1,
    fix_slope: float | None = None,
    mass_range=None,
    age_range=None,
    uncertainty: str = "profile",
) -> PopulationFit:
    """Fit β, log10 M* (model "schechter"; "power_law" has M* = ∞) and γ to a catalog with
    the detection probability in the likelihood (module docstring).

    log_mass_msun, log_age_yr: (N,) derived log10(M/M☉), log10(t/yr).
    completeness: (N, n_mass, n_age) in [0, 1], C_i on log_mass_grid (n_mass,, log10 M☉)
    × log_age_grid (n_age,, log10 yr) with cluster i's own nuisances.
    sigma_log_mass, sigma_log_age: Gaussian scatter (dex) of derived around true values.
    c_min: the sample cut on C_i at the derived values; clusters :func:`sample_mask`
    rejects are dropped (count logged) — the caller's sample must leave them out too.
    fix_slope: hold β at this value. mass_range, age_range: (lo, hi) log10 M☉ / yr of the
    intrinsic population, inside the grids (default: the whole grids).
    uncertainty: "profile" (profile likelihood, ΔNLL = 0.5) or "hessian" (symmetric,
    from the curvature at the minimum; faster, poor where M* is barely bounded).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if uncertainty not in ("profile", "hessian"):
        raise ValueError(f"uncertainty must be 'profile' or 'hessian', got {uncertainty!r}")
    if not 0.0 < float(c_min) <= 1.0:
        raise ValueError(f"c_min must be in (0, 1], got {c_min}")
    m, t, c, x, y = _check_inputs(
        log_mass_msun, log_age_yr, completeness, log_mass_grid, log_age_grid
    )
    sigma_m = _sigma("sigma_log_mass", sigma_log_mass)
    sigma_t = _sigma("sigma_log_age", sigma_log_age)
    mass_range = _range("mass_range", mass_range, x)
    age_range = _range("age_range", age_range, y)
    if fix_slope is not None and not SLOPE_RANGE[0] <= fix_slope <= SLOPE_RANGE[1]:
        raise ValueError(f"fix_slope = {fix_slope} is outside SLOPE_RANGE {SLOPE_RANGE}")

    keep = sample_mask(
        m,
        t,
        c,
        x,
        y,
        c_min=c_min,
        sigma_log_mass=sigma_m,
        sigma_log_age=sigma_t,
        mass_range=mass_range,
        age_range=age_range,
    )
    n_dropped = int(m.size - keep.sum())
    if n_dropped:
        log.info(
            "population fit: dropped %d of %d clusters (off the grid/range or C < %g there)",
            n_dropped,
            m.size,
            c_min,
        )
    free = [k for k, on in enumerate([fix_slope is None, model == "schechter", True]) if on]
    if keep.sum() <= len(free):
        raise ValueError(
            f"only {int(keep.sum())} of {m.size} clusters are inside the grid with C ≥ {c_min}: "
            f"too few to fit {len(free)} parameters"
        )
    m, t, c, c_min = m[keep], t[keep], c[keep], float(c_min)
    like = _Likelihood(m, t, c, x, y, c_min, sigma_m, sigma_t, mass_range, age_range)
    mstar_lo = max(mass_range[0] - 1.0, mass_range[1] - LOG_MSTAR_BELOW_TOP)
    mstar_bounds = (mstar_lo, LOG_MSTAR_MAX) if model == "schechter" else (math.inf, math.inf)
    bounds = [SLOPE_RANGE, mstar_bounds, AGE_INDEX_RANGE]
    problem = _Problem(like, free, bounds)

    slope0 = -2.0 if fix_slope is None else float(fix_slope)
    if model == "power_law":
        theta, nll, ok = problem.minimise(np.array([slope0, math.inf, -1.0]), {})
    else:
        # the power-law limit (M* at the top of its search range, where −ln L is flat) and a
        # cutoff near the top of the masses: keep the better
        pl, _, _ = problem.minimise(np.array([slope0, LOG_MSTAR_MAX, -1.0]), {1: LOG_MSTAR_MAX})
        best = None
        for log_mstar0 in (mass_range[1], LOG_MSTAR_MAX):
            start = pl.copy()
            start[1] = log_mstar0
            trial = problem.minimise(start, {})
            if best is None or trial[1] < best[1]:
                best = trial
        theta, nll, ok = best

    errs = _errors(problem, theta, nll, bounds, uncertainty)
    log_mstar = math.inf if model == "power_law" else float(theta[1])
    return PopulationFit(
        model=model,
        slope=float(theta[0]),
        slope_err_lo=float(errs[0][0]),
        slope_err_hi=float(errs[0][1]),
        log_mstar_msun=log_mstar,
        log_mstar_err_lo=float(errs[1][0]),
        log_mstar_err_hi=float(errs[1][1]),
        age_index=float(theta[2]),
        age_index_err_lo=float(errs[2][0]),
        age_index_err_hi=float(errs[2][1]),
        n_clusters=int(m.size),
        n_dropped=n_dropped,
        c_min=c_min,
        sigma_log_mass=sigma_m,
        sigma_log_age=sigma_t,
        log_mass_lo_msun=mass_range[0],
        log_mass_hi_msun=mass_range[1],
        log_age_lo_yr=age_range[0],
        log_age_hi_yr=age_range[1],
        nll=float(nll),
        converged=bool(ok),
        uncertainty=uncertainty,
    )


# --- model predictions, limits and mocks


def _shapes(x: np.ndarray, y: np.ndarray, slope: float, log_mstar: float, age_index: float):
    """dN/dlog M (n_mass,) and dN/dlog t (n_age,) at the nodes, each scaled to a maximum
    of 1 (the scale cancels in every p_i)."""
    log_phi = (slope + 1.0) * LN10 * x
    if not math.isinf(log_mstar):
        log_phi = log_phi - 10.0 ** (x - log_mstar)
    log_psi = (age_index + 1.0) * LN10 * y
    return np.exp(log_phi - log_phi.max()), np.exp(log_psi - log_psi.max())


@_one_blas_thread
def expected_counts(
    fit: PopulationFit,
    log_mass_msun,
    log_age_yr,
    completeness,
    log_mass_grid,
    log_age_grid,
    log_mass_edges_msun,
    log_age_edges_yr=None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Clusters the fit predicts per bin of derived mass (len(mass edges) − 1,) and, if
    log_age_edges_yr is given, of derived age (else None): Σ_i ∫_bin p_i, the sum of the
    fitted clusters' normalised densities, so the counts add up to fit.n_clusters where the
    bins span the grid.

    Pass the same arrays as to :func:`fit_population`; the same :func:`sample_mask`
    selects the clusters, and the observed histogram to compare with is that of
    log_mass_msun[mask] (log_age_yr[mask]).
    """
    m, t, c, x, y = _check_inputs(
        log_mass_msun, log_age_yr, completeness, log_mass_grid, log_age_grid
    )
    mass_range = (fit.log_mass_lo_msun, fit.log_mass_hi_msun)
    age_range = (fit.log_age_lo_yr, fit.log_age_hi_yr)
    sm, st = fit.sigma_log_mass, fit.sigma_log_age
    keep = sample_mask(
        m,
        t,
        c,
        x,
        y,
        c_min=fit.c_min,
        sigma_log_mass=sm,
        sigma_log_age=st,
        mass_range=mass_range,
        age_range=age_range,
    )
    if int(keep.sum()) != fit.n_clusters:
        raise ValueError(
            f"{int(keep.sum())} clusters pass the sample cut but the fit used {fit.n_clusters}: "
            "pass the arrays given to fit_population"
        )
    mass_edges = _edges("log_mass_edges_msun", log_mass_edges_msun)
    age_edges = None if log_age_edges_yr is None else _edges("log_age_edges_yr", log_age_edges_yr)
    return _expected_counts(fit, c[keep], x, y, mass_edges, age_edges)


def _edges(name: str, edges) -> np.ndarray:
    e = np.asarray(edges, float)
    if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0):
        raise ValueError(f"{name} must be 1-D, strictly increasing, with ≥ 2 edges")
    return e


def _expected_counts(fit, c, x, y, log_mass_edges_msun, log_age_edges_yr):
    """The body of :func:`expected_counts`, on the clusters the fit used."""
    mass_range = (fit.log_mass_lo_msun, fit.log_mass_hi_msun)
    age_range = (fit.log_age_lo_yr, fit.log_age_hi_yr)
    sm, st = fit.sigma_log_mass, fit.sigma_log_age
    phi, psi = _shapes(x, y, fit.slope, fit.log_mstar_msun, fit.age_index)
    weights = np.outer(phi, psi).ravel()

    def mass_in(**bins):
        b = _normaliser_tensor(c, x, y, fit.c_min, sm, st, mass_range, age_range, **bins)
        return b.reshape(len(c), -1) @ weights  # (N,) each cluster's N_i within the bins

    total = mass_in()

    def counts(edges, key):
        pairs = zip(edges[:-1], edges[1:], strict=True)
        return np.array([float(np.sum(mass_in(**{key: (a, b)}) / total)) for a, b in pairs])

    by_mass = counts(log_mass_edges_msun, "mass_bin")
    by_age = None if log_age_edges_yr is None else counts(log_age_edges_yr, "age_bin")
    return by_mass, by_age


def completeness_limit_log_mass(completeness, log_mass_grid, p: float = 0.5) -> np.ndarray:
    """log10(M/M☉) where the completeness first reaches p, per age node (n_age,): for
    completeness (N, n_mass, n_age) the median over clusters, or one (n_mass, n_age) map,
    linear between mass nodes. The lowest grid mass where it is ≥ p already there; NaN
    where it never reaches p. A mass limit derived from the function, for plots or cuts
    that still need one."""
    x = _grid("log_mass_grid", log_mass_grid)
    c = np.asarray(completeness, float)
    if c.ndim == 3:
        c = np.median(c, axis=0)
    if c.ndim != 2 or c.shape[0] != x.size:
        raise ValueError(
            f"completeness must be (N, n_mass, n_age) or (n_mass, n_age) with n_mass = {x.size}, "
            f"got shape {np.shape(completeness)}"
        )
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p}")
    above = c >= p
    first = np.argmax(above, axis=0)  # first node at or above p (0 if none: masked below)
    prev = np.maximum(first - 1, 0)
    cols = np.arange(c.shape[1])
    c0, c1 = c[prev, cols], c[first, cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(c1 > c0, (p - c0) / (c1 - c0), 1.0)
    out = x[prev] + np.clip(u, 0.0, 1.0) * (x[first] - x[prev])
    out = np.where(first == 0, x[0], out)
    return np.where(above.any(axis=0), out, np.nan)


def _draw_log_power(p: float, lo: float, hi: float, u: np.ndarray) -> np.ndarray:
    """log10 x on [lo, hi] with dN/dlog10 x ∝ x^p, by inverting the CDF at u ∈ [0, 1)."""
    k = p * LN10
    if abs(k * (hi - lo)) < 1e-12:
        return lo + u * (hi - lo)
    return lo + np.log1p(u * np.expm1(k * (hi - lo))) / k


def simulate_catalog(
    n: int,
    slope: float,
    log_mstar_msun: float,
    age_index: float,
    completeness_fn,
    rng: np.random.Generator,
    mass_range: tuple[float, float],
    age_range: tuple[float, float],
    sigma_log_mass: float = 0.0,
    sigma_log_age: float = 0.0,
) -> pd.DataFrame:
    """n clusters drawn from dN/dM ∝ M^slope exp(−M/M*) on 10^mass_range M☉ (log_mstar_msun
    = inf: power law) and dN/dt ∝ t^age_index on 10^age_range yr, detected with probability
    completeness_fn(log_mass_true_msun (n,), log_age_true_yr (n,)) → (n,) (called once, in
    row order, so per-cluster nuisances can be arrays of length n), and measured with
    Gaussian scatter sigma_log_mass, sigma_log_age (dex).

    Returns n rows: log_mass_true_msun, log_age_true_yr, detection_probability, detected
    (bool), log_mass_msun and log_age_yr (the derived values).
    """
    mlo, mhi = (float(v) for v in mass_range)
    tlo, thi = (float(v) for v in age_range)
    masses = np.empty(0)
    while masses.size < n:
        # the power law, thinned by exp(−M/M*) (≥ exp(−10^(mhi − log M*)) acceptance)
        m = _draw_log_power(slope + 1.0, mlo, mhi, rng.random(2 * n))
        if not math.isinf(log_mstar_msun):
            m = m[rng.random(m.size) < np.exp(-(10.0 ** (m - log_mstar_msun)))]
        masses = np.concatenate([masses, m])
    log_mass = masses[:n]
    log_age = _draw_log_power(age_index + 1.0, tlo, thi, rng.random(n))
    prob = np.asarray(completeness_fn(log_mass, log_age), float)
    detected = rng.random(n) < prob
    return pd.DataFrame(
        {
            "log_mass_true_msun": log_mass,
            "log_age_true_yr": log_age,
            "detection_probability": prob,
            "detected": detected,
            "log_mass_msun": log_mass + sigma_log_mass * rng.standard_normal(n),
            "log_age_yr": log_age + sigma_log_age * rng.standard_normal(n),
        }
    )
