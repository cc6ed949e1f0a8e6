"""Private files and directories: every file trio-oco writes that may hold a token or state is
0600, in directories that are 0700 all the way down from the first one we create.

`Path.mkdir(parents=True, mode=0o700)` is not enough: it gives the mode to the last directory
only, the parents it makes get the default (0755 under the usual umask), so a fresh state
directory would be world-listable. Each missing component is made here, one by one, 0700.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def ensure_private_dir(path: Path) -> Path:
    """Create `path` and each missing parent, every one we create 0700 (existing ones are
    left alone: they are not ours). A file in the way raises the OSError that says so."""
    path = Path(path)
    missing = [d for d in (path, *path.parents) if not d.is_dir()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
    return path


def write_private_file(path: Path, text: str, *, durable: bool = True) -> Path:
    """Write `text` to `path` atomically (temp file + rename), file mode 0600, in a private
    directory. Readers never see a half-written file, and a secret is never briefly
    world-readable: mkstemp creates the temp file 0600 before a byte is written.
    `durable`: fsync before the rename (state that must survive a crash; a cache need not)."""
    path = Path(path)
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    done = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        done = True
    finally:
        if not done:  # leave no temp file behind, whatever went wrong
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path
