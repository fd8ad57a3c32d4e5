"""Writing a user's files safely: the one atomic write every output goes through, the message an
operating-system error becomes, and the claim that makes a run folder one live run's own.

:func:`atomic_write` writes a temporary file beside its target, syncs it to disk and renames it
over the target, so that at every moment the target is its previous complete version or the new
complete one. A failure (disk full, read-only file system, no permission, a folder where the file
should be) raises :class:`OutputError`, an ``OSError`` whose message names the file, the cause
and the fix, and says that the previous version is unchanged.

:func:`claim_run_folder` holds an exclusive lock (``flock``) on ``.run-claim`` in a run folder,
holding the owner's process id, host and command. A second run into the folder is refused with
:class:`RunFolderBusy` naming that process. The kernel drops the lock when its process ends in
any way (SIGKILL included), so a dead owner's claim is taken over without asking anyone.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

__all__ = ["atomic_write", "remove_stale_temporaries", "OutputError", "describe_os_error",
           "claim_run_folder", "RunFolderBusy", "CLAIM_FILE", "sync_file"]

PathLike = Union[str, os.PathLike]

#: The claim file in a run folder (hidden: it is no output of the run).
CLAIM_FILE = ".run-claim"

_FIXES = {
    errno.ENOSPC: "free space on that disk or write to a folder on another one",
    errno.EDQUOT: "free space within your quota or write to a folder elsewhere",
    errno.EROFS: "write to a folder on a writable file system",
    errno.EACCES: "choose a folder you may write to, or change its permissions",
    errno.EPERM: "choose a folder you own",
    errno.EISDIR: "a folder has that name; move it away or choose another path",
    errno.ENOTDIR: "a file stands where a folder of that path should be; move it away or choose "
                   "another path",
    errno.EEXIST: "a file has the name of a folder this needs; move it away or choose another "
                  "path",
}


class OutputError(OSError):
    """Writing a file failed; the message names the file, the cause and the fix.

    Args:
        message: the whole message (see :func:`describe_os_error`).
        code: the ``errno`` of the operating-system error, if there was one.
        path: the file or folder that could not be written.
    """

    def __init__(self, message: str, code: Optional[int] = None, path: Optional[Path] = None):
        super().__init__(message)
        self.errno = code
        self.path = path


def describe_os_error(err: OSError, path: PathLike, *, action: str = "write") -> str:
    """``cannot write PATH: No space left on device; free space on that disk ...``.

    Args:
        err: the operating-system error; its ``strerror`` is the cause, its ``errno`` picks the fix.
        path: the file or folder the message names.
        action: the verb after "cannot" (default ``"write"``, e.g. ``"create the folder"``).
    """
    cause = err.strerror or str(err)
    fix = _FIXES.get(err.errno)
    return f"cannot {action} {path}: {cause}" + (f"; {fix}" if fix else "")


def _read_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; set it straight back
    os.umask(mask)
    return mask


# Read once, at import: os.umask() changes the process-wide mask for a moment.
_UMASK = _read_umask()


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def sync_file(path: PathLike) -> None:
    """Flush ``path``'s content to disk.

    Args:
        path: an existing file.
    """
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def atomic_write(path: PathLike, write: Callable[[str], Any], *,
                 before_replace: Optional[Callable[[Path], None]] = None) -> Path:
    """Call ``write(tmp_path)`` then rename the finished file onto ``path``: a kill at any moment
    leaves either the old file or the new one, never half a file.

    The temporary file is synced to disk before the rename and the folder after it.

    Args:
        path: the target file; missing parent folders are created.
        write: called with the temporary file's path (a ``str`` in the same folder) to write it.
        before_replace: called with the temporary file's path between the sync and the rename
            (fault injection in tests); default none.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: for any ``OSError``, naming ``path`` and the fix.
    """
    path = Path(path)
    existed = path.is_file()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide the file from the user's group
        sync_file(tmp)
        if before_replace is not None:
            before_replace(Path(tmp))
        os.replace(tmp, path)
        _fsync_directory(path.parent)  # makes the rename itself survive a power cut
    except OutputError:
        raise
    except OSError as err:
        kept = f" (the previous {path.name} is unchanged)" if existed else ""
        raise OutputError(describe_os_error(err, path) + kept, err.errno, path) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(path: PathLike) -> List[Path]:
    """Delete the temporary files :func:`atomic_write` left beside ``path`` when a process was
    killed before renaming them.

    Args:
        path: the target file whose leftover temporaries (``.NAME.*.tmp`` beside it) are deleted.

    Returns:
        The deleted paths, sorted.
    """
    path = Path(path)
    stale = sorted(path.parent.glob(f"{_temporary_prefix(path)}*.tmp")) if path.parent.is_dir() \
        else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


# ---------------------------------------------------------------------------------------------
# Run folders: one live run each
# ---------------------------------------------------------------------------------------------

class RunFolderBusy(FileExistsError):
    """Another live process is writing a run into this folder."""


#: Claims this process holds: resolved folder -> [file descriptor, depth].
_HELD: Dict[Path, list] = {}


_UNKNOWN_OWNER = "another process"


def _owner_text(data: str) -> str:
    try:
        owner = json.loads(data)
        return (f"process {owner['pid']} on {owner['host']} (started {owner['since']}: "
                f"{owner['command']})")
    except (ValueError, KeyError, TypeError):
        return _UNKNOWN_OWNER


def _lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; False if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: msvcrt locks the first byte instead
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _read_owner(fd: int) -> str:
    # The holder writes who it is just after taking the lock: a loser that arrives in between
    # waits up to a second for a whole record, so the message can name the process.
    owner = ""
    for _ in range(20):
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            owner = os.read(fd, 4096).decode("utf-8", "replace")
        if _owner_text(owner) != _UNKNOWN_OWNER:
            break
        time.sleep(0.05)
    return owner


def _acquire(folder: Path) -> int:
    path = folder / CLAIM_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        if not _lock(fd):
            owner = _read_owner(fd)
            os.close(fd)
            raise RunFolderBusy(
                f"{folder} is in use by {_owner_text(owner)}; wait for it to finish or stop it, "
                f"or choose another output folder")
        # The previous owner may have removed the file between our open and our lock: then
        # the lock is on a file no one else sees, and we try again.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def claim_run_folder(folder: PathLike) -> Iterator[Path]:
    """Hold ``folder`` for this process until the block ends. Re-entrant within a process.

    A claim left by a process that died (killed, crashed, power cut) is no lock any more: the
    kernel released it, and the next run takes the folder over, with a note on stderr.

    Args:
        folder: the run folder; created if missing (and removed again if it is still empty when
            the block ends).

    Yields:
        ``folder`` as a :class:`~pathlib.Path`.

    Raises:
        RunFolderBusy: naming the live process that holds the folder.
        OutputError: when the folder or its claim file cannot be created.
    """
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(describe_os_error(err, folder, action="create the folder"),
                          err.errno, folder) from None
    key = folder.resolve()
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield folder
        finally:
            _HELD[key][1] -= 1
        return
    try:
        fd = _acquire(folder)
    except RunFolderBusy:
        raise
    except OSError as err:
        raise OutputError(describe_os_error(err, folder / CLAIM_FILE), err.errno,
                          folder) from None
    previous = os.read(fd, 4096).decode("utf-8", "replace")
    if previous.strip():
        print(f"note: taking over {folder} from {_owner_text(previous)}, which ended without "
              f"releasing it", file=sys.stderr)
    owner = {"pid": os.getpid(), "host": socket.gethostname(),
             "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(owner).encode())
    except OSError as err:  # e.g. a full disk: the claim holds without its note of who owns it
        print(f"note: {describe_os_error(err, folder / CLAIM_FILE)}", file=sys.stderr)
    _HELD[key] = [fd, 1]
    try:
        yield folder
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.unlink(folder / CLAIM_FILE)  # while still locked: no one can be between the two
        os.close(fd)
        if created:  # a run that failed before writing anything leaves no empty folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()
