"""Config sections as dataclasses: the helper every settings class's ``from_config`` uses.

It sits below :mod:`starclusters.config` (it needs only :class:`~starclusters.errors.ConfigError`),
so that the stage packages whose settings :func:`starclusters.config.check_config` checks
never import ``config`` back.
"""

from __future__ import annotations

from collections.abc import Mapping

from starclusters.errors import ConfigError


def dataclass_from_config(cls, section: Mapping | None, key: str, **overrides):
    """An instance of dataclass ``cls`` from a config section whose keys are its field names.

    ``overrides`` win over the section; lists become tuples (YAML has no tuples).
    ConfigError naming ``<key>.<name>`` for a key that is not a field.
    """
    import dataclasses

    values = {**dict(section or {}), **overrides}
    names = {f.name for f in dataclasses.fields(cls)}
    for name in values:
        if name not in names:
            raise ConfigError(
                f"{key}.{name}: unknown key; known keys are {', '.join(sorted(names))}"
            )

    def as_tuple(value):
        return tuple(as_tuple(v) for v in value) if isinstance(value, list) else value

    return cls(**{name: as_tuple(value) for name, value in values.items()})
