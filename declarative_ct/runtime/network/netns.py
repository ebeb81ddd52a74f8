"""Which network namespace a thread is in, finding one again by identity, entering it for a while.

``setns(CLONE_NEWNET)`` changes only the calling thread, so :func:`entered` is safe in the
reconciler's worker threads; sockets made inside (netlink, nft's) stay bound to that namespace.
"""

from __future__ import annotations

import contextlib
import glob
import os
from typing import Iterator

from .. import linux

Identity = tuple[int, int]  # (st_dev, st_ino) of an nsfs file


def current() -> Identity:
    """The identity of the calling thread's network namespace."""
    st = os.stat("/proc/thread-self/ns/net")
    return st.st_dev, st.st_ino


def find(identity: Identity | list[int]) -> str | None:
    """A path that opens the network namespace ``identity``, or None when none is found (it is gone).

    Looks at the calling thread's own namespace, this process's, and the named ones (/run/netns).
    """
    want = tuple(identity)
    for path in ["/proc/thread-self/ns/net", "/proc/self/ns/net", *sorted(glob.glob("/run/netns/*"))]:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if (st.st_dev, st.st_ino) == want:
                return path
    return None


@contextlib.contextmanager
def entered(path: str) -> Iterator[None]:
    """Run the body in the network namespace at ``path`` (``/proc/<pid>/ns/net``…), then come back.

    Raises:
        OSError: ``path`` cannot be opened or entered.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(target, linux.CLONE_NEWNET)
        finally:
            os.close(target)
        try:
            yield
        finally:
            linux.setns(own, linux.CLONE_NEWNET)
    finally:
        os.close(own)


def iproute():  # noqa: ANN201 - pyroute2's IPRoute, imported here: ~150 ms that only networked creates pay
    """A netlink socket (pyroute2 ``IPRoute``) in the calling thread's network namespace; the caller closes it."""
    from pyroute2 import IPRoute

    return IPRoute()
