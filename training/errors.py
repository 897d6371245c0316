"""The one user-facing error type of the training side."""


class UserError(ValueError):
    """Bad input from the user (a file, a flag, a config key): printed as one line, exit status 2."""


class DataError(UserError):
    """A dataset that cannot be loaded: the message names the file and the reason."""
