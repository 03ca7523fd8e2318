"""Errors that mean "the user asked for something that cannot work": the entry point prints them plainly."""


class ConfigError(ValueError):
    """An invalid or incompatible configuration, detected before training starts."""


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training stops before the weights are overwritten with NaNs."""


class WriteError(RuntimeError):
    """A file could not be written (full disk, file-size or quota limit); the previous version is intact."""
