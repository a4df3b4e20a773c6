"""Files written whole or not at all, and read with one-line errors: every output of htraug goes
through here (docs/DESIGN.md §10).

`atomic_file(path, mode)` yields a file object on a hidden temporary file beside `path` and renames
it into place only when the block succeeds, so a reader sees the old file or the new one, never a
torn one. `StagingDir` does the same for a whole directory. `exclusive(path)` holds a lock beside an
output, so that a second writer fails at once ("OUT is being written by pid N") instead of
replacing the first one's work. Temporary names carry the writer's pid (`.NAME.PID-XXXX.tmp`,
`.NAME.tmp-PID-XXXX`): what a killed writer left behind is removed by the next writer of that
output (`remove_stale`). Operating-system failures become `UserError`s that name the user's path
(never the temporary one): "cannot write OUT: read-only file system", "no space left on device
writing OUT".
"""
from __future__ import annotations

from contextlib import contextmanager
import errno
import json
import os
from pathlib import Path
import re
import shutil
import tempfile
from typing import Iterator

from .errors import UserError, located

_NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
# Temporary names of a writer with process id PID: atomic_file's files, StagingDir's directories
# and the previous version a StagingDir moves aside while it renames.
_TEMP_FILE = re.compile(r"^\..+\.(\d+)-[A-Za-z0-9_]+\.tmp$")
_TEMP_DIR = re.compile(r"^\..+\.(?:tmp|old)-(\d+)(?:-[A-Za-z0-9_]+)?$")


def _not_a_directory(path: Path) -> Path | None:
    """The first ancestor of `path` that exists and is not a directory (None when there is none)."""
    for parent in reversed(Path(path).parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def os_error_message(exc: OSError, path, verb: str = "write") -> str:
    """"cannot write PATH: reason" in words, for the user's path ("no space left on device writing
    PATH" for a full disk or quota)."""
    if exc.errno in _NO_SPACE:
        return f"no space left on device writing {path}"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) or isinstance(exc, (NotADirectoryError, FileExistsError)):
        blocker = _not_a_directory(Path(path))
        if blocker is not None:
            return f"cannot {verb} {path}: {blocker} is a file, not a directory"
    reason = exc.strerror or type(exc).__name__
    return f"cannot {verb} {path}: {reason[0].lower() + reason[1:] if reason else reason}"


@contextmanager
def writing(path, verb: str = "write") -> Iterator[None]:
    """Turn an OSError raised in the block into a one-line UserError naming `path`."""
    try:
        yield
    except OSError as exc:
        raise UserError(os_error_message(exc, path, verb)) from None


def make_dirs(path) -> Path:
    """mkdir -p with a one-line error naming `path`."""
    path = Path(path)
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_file(path, mode: str = "w") -> Iterator:
    """A file object (text mode is UTF-8) whose contents replace `path` when the block ends
    without error; on any error the temporary file is removed and `path` is left untouched."""
    path = Path(path)
    tmp = None
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
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
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:
            pass


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
    except OSError as exc:
        raise UserError(os_error_message(exc, p, "read")) from None


def parse_json_file(path) -> object:
    """Parse an existing UTF-8 JSON file; invalid JSON is a one-line error naming file:line."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise located(path, getattr(exc, "lineno", None), f"invalid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    except OSError as exc:
        raise UserError(os_error_message(exc, path, "read")) from None


def append_jsonl(path, record: dict) -> None:
    """Append one record to a JSON-lines log (a torn last line is skipped by `read_jsonl`)."""
    with writing(path):
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_jsonl(path) -> list[dict]:
    """Records of a JSON-lines run log (a torn line from an interrupted run is ignored)."""
    out = []
    if not Path(path).is_file():
        return out
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
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
    keep = [r for r in read_jsonl(path) if position and _position(r, position_key) <= position]
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep))


def _position(record: dict, key: str) -> float:
    value = record.get(key, 0)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


# ----------------------------------------------------------------------------------------------
# Exclusive outputs and what killed writers leave behind
# ----------------------------------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # another user's live process
        return True
    return True


def remove_stale(directory, names: str | None = None, recursive: bool = False) -> list[Path]:
    """Remove the temporary files and staging directories in `directory` whose writer (the pid in
    their name) is no longer running; `names` keeps to those of one output (e.g. "data" for
    `.data.tmp-*`). Returns what was removed."""
    directory = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if recursive and entry.is_dir(follow_symlinks=False) and not name.startswith("."):
            removed += remove_stale(entry.path, names, recursive)
            continue
        if not name.startswith(".") or (names is not None and not name.startswith(f".{names}.")):
            continue
        m = (_TEMP_DIR if entry.is_dir(follow_symlinks=False) else _TEMP_FILE).match(name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def lock_path(path) -> Path:
    """The lock file of an output: `.NAME.lock` beside it."""
    p = Path(os.path.abspath(path))
    return p.with_name(f".{p.name}.lock")


_HELD: dict[str, int] = {}   # lock files this process holds → nesting depth


@contextmanager
def exclusive(path) -> Iterator[Path]:
    """Hold the lock of output `path` (a directory or file to be written) for the block.

    A second writer of the same output fails at once with "PATH is being written by pid N". The
    lock is an advisory `flock` on `.NAME.lock` beside `path`: the kernel releases it when its
    holder exits, even by kill -9, so a stale lock file never blocks anyone. Parent directories
    created for the lock are removed again when the block leaves nothing in them."""
    lock = lock_path(path)
    key = str(lock)
    if key in _HELD:                       # nested in this process (e.g. a writer inside a run)
        _HELD[key] += 1
        try:
            yield lock
        finally:
            _HELD[key] -= 1
        return
    import fcntl

    created = _missing_parents(lock.parent)
    with writing(path):
        lock.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(lock, path, fcntl)
    _HELD[key] = 1
    try:
        yield lock
    finally:
        del _HELD[key]
        try:
            os.unlink(lock)
        except OSError:
            pass
        os.close(fd)
        for d in created:                  # deepest first
            try:
                d.rmdir()
            except OSError:
                break


def _missing_parents(directory: Path) -> list[Path]:
    out = []
    d = Path(directory)
    while not d.exists() and d != d.parent:
        out.append(d)
        d = d.parent
    return out


def _acquire(lock: Path, path, fcntl) -> int:
    """Open and flock `lock`, retrying when another process replaced the file meanwhile."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(os_error_message(exc, path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            finally:
                os.close(fd)
            raise UserError(f"{path} is being written by pid {holder} (another htraug command); wait for it to "
                            "finish or choose another output") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            try:                           # the holder's pid, for the message of a second writer
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            except OSError:                # a full disk: the lock holds without it
                pass
            return fd
        os.close(fd)                       # the holder removed it as we opened it: take the new one


def check_new_output(final, overwrite: bool = False) -> None:
    """Refuse early what `StagingDir(final, overwrite)` would refuse: an existing output without
    `overwrite`, a plain file where a directory goes, an output under a plain file."""
    final = Path(final)
    if final.exists() or final.is_symlink():
        if not overwrite:
            raise UserError(f"{final}: already exists (choose another --out or remove it)")
        if not final.is_dir():
            raise UserError(f"{final}: is a file, not a directory (choose another output)")
    blocker = _not_a_directory(final)
    if blocker is not None:
        raise UserError(f"cannot write {final}: {blocker} is a file, not a directory")


def check_new_file(path) -> None:
    """Refuse early, before any work, a file output that cannot be written where it is asked for:
    a directory of that name, or a plain file among its parents (the write itself reports the
    rest: read-only file system, full disk)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: is a directory")
    blocker = _not_a_directory(path)
    if blocker is not None:
        raise UserError(f"cannot write {path}: {blocker} is a file, not a directory")


class StagingDir:
    """Build a directory under a temporary name next to `final` and rename it into place on success.

    The output is held `exclusive` while it is built, and staging directories that killed writers
    left beside it are removed first. On any exception the temporary directory is removed and
    `final` is left untouched; an OSError is reported as a one-line error naming `final`.
    """

    def __init__(self, final, overwrite: bool = False):
        self.final = Path(final)
        self.overwrite = overwrite
        self.path: Path | None = None
        self._lock = None

    def __enter__(self) -> Path:
        self._lock = exclusive(self.final)
        self._lock.__enter__()
        try:
            check_new_output(self.final, self.overwrite)
            remove_stale(self.final.parent, self.final.name)
            with writing(self.final):
                self.path = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.tmp-{os.getpid()}-", dir=self.final.parent))
                os.chmod(self.path, 0o755)  # mkdtemp creates 0700
        except BaseException:
            self._release()
            raise
        return self.path

    def _message(self, exc: OSError) -> str:
        """An OSError of the block: about `final` when it concerns the staging directory (or no
        file), else about the file it names (an input the block read)."""
        name = getattr(exc, "filename", None)
        staging = os.path.abspath(self.path) if self.path else None
        if name and staging and not os.path.abspath(os.fsdecode(name)).startswith(staging):
            if exc.errno in _NO_SPACE:
                return f"no space left on device writing {self.final}"
            reason = exc.strerror or type(exc).__name__
            return f"{os.fsdecode(name)}: {reason[0].lower() + reason[1:]}"
        return os_error_message(exc, self.final)

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.__exit__(None, None, None)

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                shutil.rmtree(self.path, ignore_errors=True)
                if isinstance(exc, OSError):
                    raise UserError(self._message(exc)) from None
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
        finally:
            self._release()
