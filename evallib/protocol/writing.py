"""Writing under ``outputs/`` and ``scratch/`` without following links, and file-system faults as messages.

Every file and folder the pipeline writes goes through these helpers:

* a folder is created (or found) component by component below a trusted base, and each
  component must be a real folder (``lstat``), never a link;
* a file is written to a fresh temporary name opened with ``O_CREAT | O_EXCL | O_NOFOLLOW``
  (a planted link at that name is never followed), flushed, then renamed over the target
  (a rename replaces a link, it never writes through it);
* a link or a foreign object where evallib writes raises :class:`UnsafePath`, naming the
  path and the fix, never the link's target or the object's content;
* a full disk, no inodes, a read-only or immutable folder raise :class:`WriteFault`, one
  line naming the folder and the fix, and nothing half-written stays behind;
* a folder is replaced by an atomic exchange (``renameat2(RENAME_EXCHANGE)``) where the
  kernel has one, so at every instant either the old or the new complete copy exists under
  its name; elsewhere by two renames, which :func:`restore_old` can undo.

Imports nothing of evallib but its errors, so every layer may use it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from evallib.errors import EvalLibError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_FAULT_ERRNOS = frozenset({*_NO_SPACE, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG})


class UnsafePath(EvalLibError):
    """A link, or an object evallib did not make, stands where evallib writes: refused, never followed."""


class FileTooLarge(EvalLibError, ValueError):
    """A file read with a size limit (:func:`read_file`'s ``limit``) is larger than that limit: not read."""


class WriteFault(EvalLibError):
    """The file system refused a write (full, no inodes, read-only, immutable): nothing was half-written."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.errno = code


def shown(path: Path) -> str:
    """``path`` for a message: relative to the working folder when inside it, else its last two parts."""
    path = Path(os.path.abspath(path))
    try:
        rel = path.relative_to(Path.cwd())
        return rel.as_posix() if rel.parts else "."
    except (ValueError, OSError):  # outside the working folder (or no working folder)
        return "/".join(path.parts[-2:])


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    return "a special file (a pipe, socket or device)"


def _refuse(path: Path, mode: int, wanted: str) -> UnsafePath:
    return UnsafePath(
        f"{shown(path)} is {_kind(mode)}, where evallib writes {wanted}; evallib never writes through links or into "
        f"objects it did not make: move or remove it (e.g. `rm {shown(path)}` for a link), then run again"
    )


def check_dir(path: Path) -> bool:
    """True when ``path`` is a real folder, False when absent; :class:`UnsafePath` for a link or anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(mode):
        raise _refuse(path, mode, "a folder")
    return True


def check_file(path: Path) -> bool:
    """True when ``path`` is a regular file, False when absent; :class:`UnsafePath` for a link or anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise _refuse(path, mode, "a file")
    return True


def fault_message(exc: OSError | WriteFault, folder: Path | None = None) -> str:
    """One line for a file-system fault: the folder and the fix (no traceback, no absolute path)."""
    filename = getattr(exc, "filename", None)
    where = folder if folder is not None else Path(filename).parent if filename else None
    name = f"{shown(where)}/" if where is not None else "the outputs folder"
    if exc.errno in _NO_SPACE:
        why, fix = "the disk is full (no space or no free inodes left)", "free some space (`df -h`, `df -i`)"
    elif exc.errno == errno.EROFS:
        why, fix = "the file system is read-only", "remount it writable"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        why = "permission denied (or the folder is immutable)"
        fix = "fix its permissions (`ls -ld`; `lsattr -d` and `chattr -i` for the immutable flag)"
    else:
        why, fix = (getattr(exc, "strerror", None) or "a file-system error").lower(), "check the disk"
    return f"cannot write {name}: {why}; {fix} or choose another folder with --outputs, then run again"


def is_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a file-system fault :func:`fault_message` describes (not a programming error)."""
    return isinstance(exc, WriteFault) or (isinstance(exc, OSError) and exc.errno in _FAULT_ERRNOS)


@contextmanager
def faults(folder: Path) -> Iterator[None]:
    """Turn a file-system fault inside the block into :class:`WriteFault` naming ``folder`` (the outermost
    block names the folder: the user's ``outputs/`` rather than a staging folder inside it).
    """
    try:
        yield
    except (OSError, WriteFault) as exc:
        if not is_fault(exc):
            raise
        raise WriteFault(fault_message(exc, folder), exc.errno or 0) from None


def make_dir(path: Path, base: Path) -> Path:
    """Create ``path`` and its missing parents below ``base`` (which must exist), never through a link.

    Every component from ``base`` down must be a real folder (or is created as one).
    """
    rel = Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(base)))
    current = Path(base)
    if not check_dir(current):
        _missing(current)
    with faults(path.parent):
        for part in rel.parts:
            current = current / part
            try:
                os.mkdir(current, 0o755)
            except FileExistsError:
                pass
            check_dir(current)
    return path


def _missing(path: Path) -> NoReturn:
    raise UnsafePath(f"{shown(path)} does not exist; create it or choose another folder")


def fresh_dir(parent: Path, prefix: str) -> Path:
    """A new, empty folder ``parent/<prefix><random>`` that this process created (never an existing one)."""
    if not check_dir(parent):
        _missing(parent)
    path = parent / f"{prefix}{uuid.uuid4().hex[:8]}"
    with faults(parent):
        os.mkdir(path, 0o755)  # fails on anything already there, a link included
    return path


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all, never through a link.

    The folder must be a real folder; an existing ``path`` must be a regular file (a link or a
    folder there is refused). The bytes go to a fresh temporary name (``O_EXCL | O_NOFOLLOW``),
    are flushed, and the name is renamed over ``path``. A fault removes the temporary file and
    raises :class:`WriteFault`.
    """
    folder = path.parent
    if not check_dir(folder):
        _missing(folder)
    check_file(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = folder / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        with faults(folder):
            fd = os.open(tmp, flags, 0o644)
            try:
                view = memoryview(raw)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def read_file(path: Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path``, opened without following a link (:class:`UnsafePath` otherwise).

    With ``limit``, a file of more than ``limit`` bytes raises :class:`FileTooLarge`, having read at most
    ``limit + 1`` of them (so a hostile file cannot fill memory, even one that grows while it is read).
    """
    try:
        # Non-blocking: a FIFO planted here would block the opening until a writer came (refused below instead)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse(path, stat.S_IFLNK, "a file") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refuse(path, mode, "a file")
        left = sys.maxsize if limit is None else limit + 1
        chunks = []
        while left and (chunk := os.read(fd, min(1 << 20, left))):
            chunks.append(chunk)
            left -= len(chunk)
        if not left:  # more than the limit: read no further
            raise FileTooLarge(f"{shown(path)} is larger than {limit} bytes, the most evallib reads there: remove it")
        return b"".join(chunks)
    finally:
        os.close(fd)


def copy_file(src: Path, dst: Path) -> None:
    """Copy the regular file ``src`` to ``dst`` with :func:`write_atomic`; neither is followed through a link."""
    write_atomic(dst, read_file(src))


def remove_file(path: Path) -> None:
    """Remove the file ``path`` if present, in a real folder (a link there is removed itself, never followed)."""
    if not check_dir(path.parent):
        return
    with faults(path.parent):
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            raise _refuse(path, mode, "a file")
        os.unlink(path)


def remove_tree(path: Path) -> None:
    """Remove the folder ``path`` (evallib's own staging or old copy) if present; a link there is refused."""
    if check_dir(path):
        shutil.rmtree(path, ignore_errors=True)  # rmtree never follows links inside the tree


def _renameat2() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` in one atomic step; False when the kernel or file system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:  # type: ignore[operator]
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_in_dir(new: Path, final: Path, old_name: str) -> None:
    """Put the complete folder ``new`` in place of ``final`` so that one complete copy always bears the name.

    With an atomic exchange, ``new`` then holds the old copy and is removed. Without one, ``final`` is first
    renamed to ``old_name`` beside it; a process killed before the second rename leaves the old copy there,
    and :func:`restore_old` puts it back. A link or a foreign object at ``final`` is refused.
    """
    with faults(final.parent):
        if check_dir(final):
            if exchange(new, final):
                remove_tree(new)
                return
            old = final.with_name(old_name)
            final.rename(old)
            try:
                new.rename(final)
            except OSError:
                old.rename(final)  # the second rename failed: the old copy takes its name back
                raise
            remove_tree(old)
        else:
            new.rename(final)


def restore_old(old: Path, final: Path, complete: bool, keep: tuple[str, ...] = ()) -> bool:
    """Undo a swap cut short: ``old`` (a previous complete copy) goes back when ``final`` is not complete.

    ``complete`` says whether ``final`` holds a whole copy (then ``old`` is only deleted). Files named in
    ``keep`` (a failure record written since) move from the incomplete ``final`` into the restored copy.
    Returns whether ``old`` was restored.
    """
    if not check_dir(old):
        return False
    if complete:
        remove_tree(old)
        return False
    with faults(final.parent):
        if check_dir(final):
            for name in keep:
                if check_file(final / name):
                    os.replace(final / name, old / name)
            if exchange(old, final):  # the old copy takes the name in one step; the incomplete one goes
                remove_tree(old)
                return True
            remove_tree(final)
        old.rename(final)
    return True
