"""Settings of the ``detect`` config section, without torch: :class:`DetectSettings` (how
the value maps are made) and :class:`CatalogSettings` (peaks, candidates, gallery, truth
match). Each owns its keys' defaults and checks; together they are the whole section.

The workflow checks them while it parses the config (:func:`starclusters.config.check_config`),
so this module imports neither torch nor the network (only its torch-free definition,
:mod:`starclusters.model.spec`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from starclusters.detect.catalog import CLASS_THRESHOLD, VISIBILITY_THRESHOLD, check_geometry_config
from starclusters.detect.matching import MATCH_RADIUS_PX
from starclusters.detect.peaks import SMOOTH_SIGMA_PX, WEIGHT_SIGMA_PX, WEIGHT_WINDOW_PX
from starclusters.detect.population_prior import SHRINK
from starclusters.detect.recentre import RADIUS_PX, SKY_ANNULUS_PX
from starclusters.errors import ConfigError
from starclusters.model.spec import DENSE_READY, spec_defaults
from starclusters.sections import is_integer, is_number

log = logging.getLogger(__name__)

CONFIG_KEY = "detect"
#: Modes that make the maps. exact: one network evaluation per window centre (the reference);
#: fast: the dense-ready network evaluated fully convolutionally (same values, far fewer
#: operations; needs model.padding: valid and model.input_norm: fixed).
MODES = ("exact", "fast")
#: The mode that picks one of MODES for the network at hand (:func:`resolve_mode`).
AUTO = "auto"
#: Values of detect.mode (``--mode``): auto or one of MODES.
MODE_CHOICES = (AUTO, *MODES)
#: model.<key>: the value a model section without the key has (NetworkSpec's defaults) for
#: the keys that decide the fast mode (:data:`~starclusters.model.spec.DENSE_READY`).
MODEL_KEY_DEFAULTS = {key: spec_defaults()[key] for key in DENSE_READY}
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class DetectSettings:
    """How the value maps are made.

    mode: "exact" (see :mod:`starclusters.detect.exact`), "fast"
    (:mod:`starclusters.detect.fast`) or "auto" (fast for a dense-ready network, else exact;
    :func:`resolve_mode` picks it once the model is known); step_px: pixels between evaluated
    window centres along rows and columns (thesis: 1); tile_px: side of a tile's core, px
    (one workflow job per tile); batch_size: windows per forward pass; device: "cpu" or
    "cuda" (bf16 autocast as in training). Invalid values raise ConfigError naming
    ``detect.<key>``.
    """

    mode: str = AUTO
    step_px: int = 1
    tile_px: int = 512
    batch_size: int = 256
    device: str = "cpu"

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{CONFIG_KEY}.{key}: {why}, got {getattr(self, key)!r}")

        if self.mode not in MODE_CHOICES:
            bad("mode", f"must be one of {', '.join(MODE_CHOICES)}")
        for key in ("step_px", "tile_px", "batch_size"):
            value = getattr(self, key)
            if not is_integer(value, 1):
                bad(key, "must be a positive integer")
        if self.device not in DEVICES:
            bad("device", f"must be one of {', '.join(DEVICES)}")

    def check_model(self, model_section: Mapping | None, where: str = "model") -> None:
        """ConfigError naming ``detect.mode`` if the mode cannot run the network of
        ``model_section`` (a ``model`` config section or a checkpoint's spec; absent keys
        take NetworkSpec's defaults, padding "same", input_norm "window"). "auto" runs any
        network (:func:`resolve_mode`)."""
        if self.mode != "fast" or is_dense_ready(model_section):
            return
        have = ", ".join(f"model.{k}: {v}" for k, v in dense_ready_keys(model_section).items())
        need = " and ".join(f"model.{k}: {v}" for k, v in DENSE_READY.items())
        raise ConfigError(
            f"detect.mode: fast needs a dense-ready network ({need}); {where} has {have} — "
            "set those model keys (and retrain) or use detect.mode: exact or auto"
        )

    @classmethod
    def from_config(cls, section: Mapping | None = None, **overrides) -> DetectSettings:
        """Settings from the ``detect`` config section, then ``overrides``.

        Only this class's fields are read: the section's other keys belong to peak finding
        (:class:`CatalogSettings`); a key neither class knows raises ConfigError.
        """
        return cls(**_own_keys(cls, section, overrides))

    def to_config(self) -> dict:
        """The settings as a plain ``detect`` config mapping."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CatalogSettings:
    """How peaks and candidates are found in the value maps (thesis §4.2.2) and shown.

    smooth_sigma_px: Gaussian σ of the class map's smoothing before peak finding, px (0:
    none); weight_window_px: odd side of the window of a peak's weighted parameters, px;
    weight_sigma_px: σ of the distance weight in that window, px; class_threshold,
    visibility_threshold: a candidate's class and visibility are above them;
    derived_thresholds: take those two from the network's held-out test instead (its
    Youden cut, :mod:`starclusters.model.thresholds`;
    :func:`~starclusters.detect.candidates_stage.resolve_thresholds`);
    population_prior: read the candidates again under the galaxy's A_V prior
    (:mod:`starclusters.detect.population_prior`); population_prior_shrink: that prior's
    pseudo-count of the training one, in units of the candidates, ≥ 0;
    population_prior_smoothing: its EM estimate smoothed over neighbouring A_V bins after
    every step (EMS; :func:`~starclusters.detect.population_prior.av_prior_weights`);
    recentre_radius_px: move every peak to the noise-weighted light centroid of the mosaic
    within this radius, px (:mod:`starclusters.detect.recentre`; 0: keep the class-map
    peak pixel); recentre_sky_annulus_px: (inner, outer) radii of that centroid's local
    sky, px; gallery_size: candidates in the gallery; gallery_field_arcsec: side of a gallery
    cut-out, arcsec; match_radius_px: largest distance of a truth match, px. Invalid values
    raise ConfigError naming ``detect.<key>``.
    """

    smooth_sigma_px: float = SMOOTH_SIGMA_PX
    weight_window_px: int = WEIGHT_WINDOW_PX
    weight_sigma_px: float = WEIGHT_SIGMA_PX
    class_threshold: float = CLASS_THRESHOLD
    visibility_threshold: float = VISIBILITY_THRESHOLD
    derived_thresholds: bool = False
    gallery_size: int = 12
    gallery_field_arcsec: float = 7.0
    match_radius_px: float = MATCH_RADIUS_PX
    population_prior: bool = True
    population_prior_shrink: float = SHRINK
    population_prior_smoothing: bool = True
    recentre_radius_px: float = RADIUS_PX
    recentre_sky_annulus_px: tuple[float, float] = SKY_ANNULUS_PX

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{CONFIG_KEY}.{key}: {why}, got {getattr(self, key)!r}")

        def number(key):
            value = getattr(self, key)
            if not is_number(value):
                bad(key, "must be a number")
            return value

        for key in ("weight_window_px", "gallery_size"):
            value = getattr(self, key)
            if not is_integer(value, 1):
                bad(key, "must be a positive integer")
        if self.weight_window_px % 2 != 1:
            bad("weight_window_px", "must be odd (centred on the peak)")
        for key in ("population_prior", "population_prior_smoothing", "derived_thresholds"):
            if not isinstance(getattr(self, key), bool):
                bad(key, "must be true or false")
        for key in ("smooth_sigma_px", "population_prior_shrink", "visibility_threshold"):
            if not number(key) >= 0:
                bad(key, "must be ≥ 0")
        for key in ("weight_sigma_px", "gallery_field_arcsec", "match_radius_px"):
            if not number(key) > 0:
                bad(key, "must be > 0")
        if not 0 <= number("class_threshold") <= 1:
            bad("class_threshold", "must be in [0, 1]")
        if not number("recentre_radius_px") >= 0:
            bad("recentre_radius_px", "must be ≥ 0 (0: keep the class-map peak pixel)")
        annulus = self.recentre_sky_annulus_px
        if (
            isinstance(annulus, str)
            or not hasattr(annulus, "__len__")
            or len(annulus) != 2
            or not all(is_number(r) for r in annulus)
            or not 0 < annulus[0] < annulus[1]
        ):
            bad("recentre_sky_annulus_px", "must be [inner, outer] radii, px, 0 < inner < outer")
        if not annulus[0] > self.recentre_radius_px:
            bad(
                "recentre_sky_annulus_px",
                "the inner radius must exceed recentre_radius_px (the sky is not the source)",
            )
        # a YAML list: a tuple, so that the frozen settings hash and compare by value
        object.__setattr__(self, "recentre_sky_annulus_px", tuple(float(r) for r in annulus))

    @property
    def recentres(self) -> bool:
        """True if peaks move to their light centroid (recentre_radius_px > 0)."""
        return self.recentre_radius_px > 0

    @classmethod
    def from_config(cls, section: Mapping | None = None, **overrides) -> CatalogSettings:
        """Settings from the ``detect`` config section, then ``overrides`` (None ones are
        ignored, as an unset command-line option). Only this class's fields are read: the
        section's other keys make the maps (:class:`DetectSettings`)."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        return cls(**_own_keys(cls, section, overrides))

    def to_config(self) -> dict:
        """The settings as a plain ``detect`` config mapping."""
        out = dataclasses.asdict(self)
        out["recentre_sky_annulus_px"] = list(self.recentre_sky_annulus_px)
        return out


def _own_keys(cls, section: Mapping | None, overrides: Mapping) -> dict:
    """The keys of ``section`` and ``overrides`` that are fields of ``cls`` (one of the two
    classes of the ``detect`` section). ConfigError naming ``detect.<key>`` for a key that
    neither class knows."""
    values = {**dict(section or {}), **overrides}
    known = {f.name for c in (DetectSettings, CatalogSettings) for f in dataclasses.fields(c)}
    for key in values:
        if key not in known:
            raise ConfigError(
                f"{CONFIG_KEY}.{key}: unknown key; known keys are {', '.join(sorted(known))}"
            )
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def check_detect_config(config: Mapping) -> None:
    """The ``detect`` section's checks that the schema cannot express (ConfigError names the
    key): the maps' settings and the network they run (:meth:`DetectSettings.check_model`),
    the peak and catalog keys (:class:`CatalogSettings`), and a complete galaxy_geometry
    (:func:`~starclusters.detect.catalog.check_geometry_config`)."""
    DetectSettings.from_config(config.get("detect")).check_model(config.get("model"))
    CatalogSettings.from_config(config.get("detect"))
    check_geometry_config(config)


def dense_ready_keys(model_section: Mapping | None) -> dict[str, str]:
    """{key: value} of the model keys that decide the fast mode (padding, input_norm) in
    ``model_section`` (a ``model`` config section or a checkpoint's spec), absent keys at
    NetworkSpec's defaults (:data:`MODEL_KEY_DEFAULTS`)."""
    section = dict(model_section or {})
    return {key: section.get(key, default) for key, default in MODEL_KEY_DEFAULTS.items()}


def is_dense_ready(model_section: Mapping | None) -> bool:
    """True if the network of ``model_section`` runs in the fast mode (:data:`DENSE_READY`)."""
    return dense_ready_keys(model_section) == DENSE_READY


def mode_that_runs(mode: str, model_section: Mapping | None) -> str:
    """The mode that runs the network of ``model_section`` for detect.mode ``mode``: "fast"
    or "exact" as given, auto → "fast" for a dense-ready network, else "exact" (what
    :func:`resolve_mode` decides, without the log line)."""
    if mode != AUTO:
        return mode
    return "fast" if is_dense_ready(model_section) else "exact"


def resolve_mode(
    settings: DetectSettings, model_section: Mapping | None, where: str = "the model"
) -> DetectSettings:
    """``settings`` with mode "auto" replaced by the mode that runs the network.

    model_section: the network's ``model`` config section or a checkpoint's spec
    (``meta["spec"]``); where: what to call it in the log. auto becomes "fast" for a
    dense-ready network (:func:`is_dense_ready`: same maps, far fewer operations) and
    "exact" for any other; which, and why, is logged. exact and fast are returned as given
    (:meth:`DetectSettings.check_model` refuses fast for a network that cannot run it).
    """
    if settings.mode != AUTO:
        return settings
    found = ", ".join(f"model.{k}: {v}" for k, v in dense_ready_keys(model_section).items())
    mode = mode_that_runs(AUTO, model_section)
    if mode == "fast":
        why = f"{where} is dense-ready ({found})"
    else:
        need = " and ".join(f"model.{k}: {v}" for k, v in DENSE_READY.items())
        why = f"{where} has {found}; the fast mode needs {need}"
    log.info("detect.mode auto: %s mode, as %s", mode, why)
    return dataclasses.replace(settings, mode=mode)
