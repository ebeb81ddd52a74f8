"""``tmpcopyup``: a new tmpfs gets a copy of the directory it covers (runc's ``mountCopyUp``),
walked by descriptors with nothing followed. Runs in the container init: stdlib only.
"""

from __future__ import annotations

import os
import stat


def copy_up(src: int, dst_mount: int, keep_mode: bool = True) -> None:
    """``tmpcopyup``: copy the directory ``src`` (an open descriptor of what the tmpfs covers)
    into the new tmpfs ``dst_mount``, keeping modes, owners and times; with ``keep_mode`` (the
    directory was in the image) the tmpfs root takes its mode and owner, as runc does; a directory
    we made for the mount leaves tmpfs's own (1777, or the mount's ``mode=``). Nothing is
    followed: symlinks are copied as links, every name is opened relative to its parent's
    descriptor with ``O_NOFOLLOW``."""
    dst = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dst_mount)
    try:
        st = os.fstat(src)
        _copy_tree(src, dst)
        if keep_mode:
            os.chown(dst, st.st_uid, st.st_gid)
            os.chmod(dst, stat.S_IMODE(st.st_mode))
    finally:
        os.close(dst)


def _copy_tree(src: int, dst: int) -> None:
    umask = os.umask(0)
    try:
        for entry in os.scandir(src):
            name = entry.name
            st = os.stat(name, dir_fd=src, follow_symlinks=False)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(name, 0o700, dir_fd=dst)
                child_src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
                child_dst = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst)
                try:
                    _copy_tree(child_src, child_dst)
                finally:
                    os.close(child_src)
                    os.close(child_dst)
            elif stat.S_ISREG(st.st_mode):
                fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
                try:
                    fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                                   dir_fd=dst)
                    try:
                        while os.sendfile(fout, fin, None, 1 << 20):
                            pass
                    finally:
                        os.close(fout)
                finally:
                    os.close(fin)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
            else:
                continue  # sockets: nothing to copy
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(name, mode, dir_fd=dst)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
    finally:
        os.umask(umask)
