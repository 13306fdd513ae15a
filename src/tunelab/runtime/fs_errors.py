"""File-system errors a user can fix (permission, disk full, read-only, a file where a folder should be, a link
loop), as one line naming the path and the fix; the CLI prints them instead of a traceback."""

from __future__ import annotations

import errno

FIXES = {
    errno.EACCES: "permission denied: check its permissions, or choose a path you can write to",
    errno.EPERM: "operation not permitted: check its permissions, or choose another path",
    errno.ENOSPC: "the disk is full: free some space, or choose a path on another disk",
    errno.EDQUOT: "the disk quota is used up: free some space, or choose a path on another disk",
    errno.EFBIG: "the file would pass the file size limit (ulimit -f) or the file system's largest file: raise the "
                 "limit, or write to another disk",
    errno.EROFS: "the file system is read-only: choose a writable path",
    errno.ELOOP: "a symbolic link loop: point the link at a real file or folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder: fix the path",
    errno.EISDIR: "this is a folder, where a file is needed: give a file's path",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
    errno.EEXIST: "it already exists: remove it, or choose another path",
    errno.ENOTEMPTY: "the folder is not empty: empty it, or choose another path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n)",
}


def is_user_error(exc: BaseException) -> bool:
    """True for an OSError whose cause is on the user's side of the file system."""
    return isinstance(exc, OSError) and exc.errno in FIXES


def describe(exc: OSError) -> str:
    """'PATH: the problem and its fix' (both paths of a rename or link)."""
    where = " -> ".join(str(name) for name in (exc.filename, exc.filename2) if name is not None)
    fix = FIXES.get(exc.errno or 0, f"{exc.strerror or exc}: check the path and its permissions")
    return f"{where}: {fix}" if where else f"{exc.strerror or exc}; {fix}"
