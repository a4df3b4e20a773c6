"""User-facing errors: one line, no traceback, non-zero exit (the CLI catches them)."""


class UserError(Exception):
    """A problem with the user's input (file, field, option) described in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def located(path, line: int | None, message: str) -> UserError:
    """Build a UserError that names a file (and line, when known)."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return UserError(f"{where}: {message}")
