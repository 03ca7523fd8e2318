"""Errors that mean "the user asked for something that cannot work": the entry point prints them plainly."""


class ConfigError(ValueError):
    """An invalid or incompatible configuration, detected before training starts."""
