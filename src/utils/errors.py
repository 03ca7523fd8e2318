"""Errors that mean "the user asked for something that cannot work": the entry point prints them plainly."""


class ConfigError(ValueError):
    """An invalid or incompatible configuration, detected before training starts."""


class WriteError(RuntimeError):
    """A file could not be written (full disk, file-size or quota limit); the previous version is intact."""
