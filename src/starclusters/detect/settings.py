"""Settings of the detection stage's maps (the ``detect`` config section), without torch.

The workflow checks them while it parses the config (:func:`starclusters.config.check_config`),
so this module imports neither torch nor the network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from starclusters.errors import ConfigError

CONFIG_KEY = "detect"
#: Modes that make the maps. exact: one network evaluation per window centre (the reference);
#: fast: the dense-ready network evaluated fully convolutionally (same values, far fewer
#: operations; needs model.padding: valid and model.input_norm: fixed).
MODES = ("exact", "fast")
#: model.<key>: value a network needs for the fast mode (NetworkSpec.dense_ready).
DENSE_READY = {"padding": "valid", "input_norm": "fixed"}
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class DetectSettings:
    """How the value maps are made.

    mode: "exact" (see :mod:`starclusters.detect.exact`) or "fast"
    (:mod:`starclusters.detect.fast`); step_px: pixels between evaluated
    window centres along rows and columns (thesis: 1); tile_px: side of a tile's core, px
    (one workflow job per tile); batch_size: windows per forward pass; device: "cpu" or
    "cuda" (bf16 autocast as in training). Invalid values raise ConfigError naming
    ``detect.<key>``.
    """

    mode: str = "exact"
    step_px: int = 1
    tile_px: int = 512
    batch_size: int = 256
    device: str = "cpu"

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{CONFIG_KEY}.{key}: {why}, got {getattr(self, key)!r}")

        if self.mode not in MODES:
            bad("mode", f"must be one of {', '.join(MODES)}")
        for key in ("step_px", "tile_px", "batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                bad(key, "must be a positive integer")
        if self.device not in DEVICES:
            bad("device", f"must be one of {', '.join(DEVICES)}")

    def check_model(self, model_section: Mapping | None, where: str = "model") -> None:
        """ConfigError naming ``detect.mode`` if the mode cannot run the network of
        ``model_section`` (a ``model`` config section or a checkpoint's spec; absent keys
        take NetworkSpec's defaults, padding "same", input_norm "window")."""
        if self.mode != "fast":
            return
        section = dict(model_section or {})
        found = {k: section.get(k, d) for k, d in (("padding", "same"), ("input_norm", "window"))}
        if found != DENSE_READY:
            have = ", ".join(f"model.{k}: {v}" for k, v in found.items())
            need = " and ".join(f"model.{k}: {v}" for k, v in DENSE_READY.items())
            raise ConfigError(
                f"detect.mode: fast needs a dense-ready network ({need}); {where} has {have} — "
                "set those model keys (and retrain) or use detect.mode: exact"
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
