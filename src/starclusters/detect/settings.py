"""Settings of the detection stage's maps (the ``detect`` config section), without torch.

The workflow checks them while it parses the config (:func:`starclusters.config.check_config`),
so this module imports neither torch nor the network (only its torch-free definition,
:mod:`starclusters.model.spec`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from starclusters.detect.catalog import check_catalog_config
from starclusters.errors import ConfigError
from starclusters.model.spec import DENSE_READY, spec_defaults

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
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
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
        (the schema rejects unknown keys).
        """
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in {**dict(section or {}), **overrides}.items() if k in names}
        return cls(**values)

    def to_config(self) -> dict:
        """The settings as a plain ``detect`` config mapping."""
        return dataclasses.asdict(self)


def check_detect_config(config: Mapping) -> None:
    """The ``detect`` section's checks that the schema cannot express (ConfigError names the
    key): the maps' settings and the network they run (:meth:`DetectSettings.check_model`),
    the peak and catalog keys (odd weight window, a complete galaxy_geometry;
    :func:`~starclusters.detect.catalog.check_catalog_config`)."""
    DetectSettings.from_config(config.get("detect")).check_model(config.get("model"))
    check_catalog_config(config)


def dense_ready_keys(model_section: Mapping | None) -> dict[str, str]:
    """{key: value} of the model keys that decide the fast mode (padding, input_norm) in
    ``model_section`` (a ``model`` config section or a checkpoint's spec), absent keys at
    NetworkSpec's defaults (:data:`MODEL_KEY_DEFAULTS`)."""
    section = dict(model_section or {})
    return {key: section.get(key, default) for key, default in MODEL_KEY_DEFAULTS.items()}


def is_dense_ready(model_section: Mapping | None) -> bool:
    """True if the network of ``model_section`` runs in the fast mode (:data:`DENSE_READY`)."""
    return dense_ready_keys(model_section) == DENSE_READY


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
    if is_dense_ready(model_section):
        mode, why = "fast", f"{where} is dense-ready ({found})"
    else:
        need = " and ".join(f"model.{k}: {v}" for k, v in DENSE_READY.items())
        mode, why = "exact", f"{where} has {found}; the fast mode needs {need}"
    log.info("detect.mode auto: %s mode, as %s", mode, why)
    return dataclasses.replace(settings, mode=mode)
