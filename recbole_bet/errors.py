"""The errors of bad input: each message names the bad value and what is allowed.

Both are ``ValueError`` s, raised before any training where the input allows it; the command line turns them into one
line and exit code 2 (:func:`recbole_bet.quick_start.main`).
"""


class ConfigError(ValueError):
    """A bad key or value in the configuration; the message names it and what is allowed."""


class BudgetError(ValueError):
    """A budget or an Action that cannot be honoured. The message names the bad value."""


class AlreadyRunning(ConfigError):
    """The same run (the same keys in the same checkpoint folder) is going on in another live process."""


class UnsafeFileError(ValueError):
    """A file recbole-bet reads back (a checkpoint, an unfinished run's unit) that holds more than tensors, numpy
    arrays and plain data: unpickling it could run code, so it is refused. The message names the file and the object."""
