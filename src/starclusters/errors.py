"""Exceptions that tell the user what was wrong and what to do."""


class StarclustersError(Exception):
    """Base class: a problem with user input (file, config key) rather than a bug."""


class ConfigError(StarclustersError, ValueError):
    """A config value is missing, of the wrong type or inconsistent; the message names the key."""


class InputFileError(StarclustersError, ValueError):
    """An input file is missing, truncated or malformed; the message names the file."""
