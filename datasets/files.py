"""Files written whole or not at all, and read with one-line errors: every output of htraug goes
through here (docs/DESIGN.md §10).

`atomic_file(path, mode)` yields a file object on a hidden temporary file beside `path` and renames
it into place only when the block succeeds, so a reader sees the old file or the new one, never a
torn one. `StagingDir` does the same for a whole directory. Operating-system failures become
`UserError`s that name the user's path (never the temporary one).
"""
from __future__ import annotations

from contextlib import contextmanager
import json
import os
from pathlib import Path
import shutil
import tempfile
from typing import Iterator

from .errors import UserError, located


def os_error_message(exc: OSError, path) -> str:
    """"cannot write PATH: reason" in words, for the user's path."""
    reason = exc.strerror or type(exc).__name__
    return f"cannot write {path}: {reason[0].lower() + reason[1:] if reason else reason}"


@contextmanager
def atomic_file(path, mode: str = "w") -> Iterator:
    """A file object (text mode is UTF-8) whose contents replace `path` when the block ends
    without error; on any error the temporary file is removed and `path` is left untouched."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary readable files
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise UserError(os_error_message(exc, path)) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp) -> None:
    if tmp is not None:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_file(path, "w") as f:
        f.write(text)


def atomic_write_json(path, obj) -> None:
    """Write indented UTF-8 JSON atomically."""
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


def read_text_file(path, what: str = "file") -> str:
    """A UTF-8 text file's contents (BOM tolerated), with one-line errors naming the file."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8-sig")
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(f"{p}: {what} not found") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{p}: not valid UTF-8 ({exc.reason})") from None


def parse_json_file(path) -> object:
    """Parse an existing UTF-8 JSON file; invalid JSON is a one-line error naming file:line."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise located(path, getattr(exc, "lineno", None), f"invalid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None


def append_jsonl(path, record: dict) -> None:
    """Append one record to a JSON-lines log (a torn last line is skipped by `read_jsonl`)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_jsonl(path) -> list[dict]:
    """Records of a JSON-lines run log (a torn line from an interrupted run is ignored)."""
    out = []
    if not Path(path).is_file():
        return out
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def rewind_jsonl(path, position_key: str, position: int) -> None:
    """Keep the records of a run log up to `position` (by `position_key`), for a run resumed from
    the checkpoint taken there: what came later will be written again. Position 0 (a fresh start)
    empties the log. Atomic; a missing log stays missing."""
    path = Path(path)
    if not path.is_file():
        return
    keep = [r for r in read_jsonl(path) if position and r.get(position_key, 0) <= position]
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep))


class StagingDir:
    """Build a directory under a temporary name next to `final` and rename it into place on success.

    On any exception the temporary directory is removed and `final` is left untouched.
    """

    def __init__(self, final, overwrite: bool = False):
        self.final = Path(final)
        self.overwrite = overwrite
        self.path: Path | None = None

    def __enter__(self) -> Path:
        if self.final.exists() and not self.overwrite:
            raise UserError(f"{self.final}: already exists (choose another --out or remove it)")
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.tmp-", dir=self.final.parent))
        except OSError as exc:
            raise UserError(os_error_message(exc, self.final)) from None
        os.chmod(self.path, 0o755)  # mkdtemp creates 0700
        return self.path

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            return False
        try:
            if self.final.exists():
                old = self.final.with_name(f".{self.final.name}.old-{os.getpid()}")
                os.replace(self.final, old)
                os.replace(self.path, self.final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(self.path, self.final)
        except OSError as err:
            shutil.rmtree(self.path, ignore_errors=True)
            raise UserError(os_error_message(err, self.final)) from None
        return False
