"""One writer per output directory: ``DIR/.jaxnn-train.lock``, held with ``flock`` for the whole run.

Two runs writing the same ``--out`` (two fresh runs, or a second ``--resume DIR``) would overwrite each
other's checkpoints.  The first run takes an exclusive ``flock`` on the lock file and writes its process id
into it; a second run finds the lock taken and is refused with one line naming that process.  The
kernel releases a ``flock`` when its process ends, however it ends, so a lock file left behind by a killed
run is stale by construction: the next run takes it over.  The file is removed when the run ends.

Removing a lock file races with a run that opened it just before: that run would lock a file no longer
in the directory.  So after locking, :class:`OutLock` checks that the path still names the file it
locked, and starts again if not.  Where ``fcntl`` is missing (Windows), there is no lock.
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxnn.cli.errors import PROG, CliError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["LOCK_FILE", "OutLock"]

LOCK_FILE = ".jaxnn-train.lock"


class OutLock:
    """``with OutLock(directory):`` — hold the directory's lock, or raise :class:`CliError` if another run does."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / LOCK_FILE
        self._descriptor: int | None = None

    def __enter__(self) -> OutLock:
        if fcntl is None:
            return self
        while self._descriptor is None:
            try:  # never through a link: the PID written would overwrite whatever it points to
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            except OSError as error:
                if isinstance(error, IsADirectoryError) or self.path.is_symlink():
                    what = "a directory" if isinstance(error, IsADirectoryError) else "a symbolic link"
                    raise CliError(
                        f"{self.path} is {what}, not the lock file {PROG} keeps there; move or rename it, "
                        "or choose another --out"
                    ) from None
                raise CliError(f"cannot take the lock {self.path}: {error.strerror or error}") from None
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(descriptor, 32).decode(errors="replace").strip()
                os.close(descriptor)
                who = f" (process {holder})" if holder.isdigit() else ""
                raise CliError(
                    f"{self.path.parent} is in use by another {PROG}{who}; wait for it to finish, "
                    "or write to another --out"
                ) from None
            if os.fstat(descriptor).st_nlink > 1:  # a hard link: O_NOFOLLOW sees none, and the PID would overwrite it
                os.close(descriptor)
                raise CliError(
                    f"{self.path} is a hard link to another file, not the lock file {PROG} keeps there; move or "
                    "rename it, or choose another --out"
                )
            if self._same_file(descriptor):
                os.ftruncate(descriptor, 0)
                os.write(descriptor, f"{os.getpid()}\n".encode())
                self._descriptor = descriptor
            else:  # the previous holder removed the file between our open and our lock: try again
                os.close(descriptor)
        return self

    def _same_file(self, descriptor: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(descriptor)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)

    def __exit__(self, *exc) -> bool:
        if self._descriptor is not None:
            self.path.unlink(missing_ok=True)  # while still holding the lock
            os.close(self._descriptor)  # releases it
            self._descriptor = None
        return False
