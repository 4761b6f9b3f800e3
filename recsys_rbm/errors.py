"""Errors a user can act on. Each message is one line that says what went wrong and what to do."""


class RecsysRBMError(Exception):
    """Base class: the command-line interface prints these as one line, without a traceback."""


class ConfigError(RecsysRBMError, ValueError):
    """A configuration value is out of range or of the wrong kind."""


class DataError(RecsysRBMError):
    """A dataset is missing, corrupt, malformed or inconsistent."""


class CheckpointError(RecsysRBMError):
    """A model file is missing, corrupt, or does not match what it is loaded for."""


class TrainingDiverged(RecsysRBMError):
    """Parameters became non-finite during training."""


class UnknownIdError(RecsysRBMError, KeyError):
    """A user or item id that the model does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownItemsWarning(UserWarning):
    """Items the model does not know were left out of a request (a new user's ratings, a candidate list)."""


class OutputError(RecsysRBMError):
    """An output path cannot be used: it exists (and may not be replaced), is locked, or cannot be written."""


class ResourceError(RecsysRBMError):
    """A run needs more memory (or another resource) than the machine can give it."""
