"""BPF iterators (``SEC("iter/task")``, ``iter/bpf_map``...): a link that makes the program
run over a kernel object set each time the iterator is read.

The program named its iterator at load time (``bpf_iter_<name>``, by BTF id); the link is a
BPF_LINK_CREATE with BPF_TRACE_ITER, and each :meth:`IterLink.read` opens a fresh iterator
(BPF_ITER_CREATE) and reads what the program wrote with ``bpf_seq_write``/``bpf_seq_printf``.
"""

from __future__ import annotations

import os

from bpfnb.errors import AttachError
from bpfnb.link.fdlink import FdLink, attach_error
from bpfnb.sys import bpf
from bpfnb.sys.constants import AttachType

__all__ = ["IterLink", "attach_iter"]

_CHUNK = 1 << 16


class IterLink(FdLink):
    """An attached iterator program; :meth:`read` runs one pass and returns its output."""

    def read(self) -> bytes:
        """Run the iterator once and return everything the program wrote."""
        if self.closed or not self.fds:
            raise AttachError(f"iterator {self.target!r} is detached")
        try:
            reader = bpf.iter_create(self.fds[0])
        except OSError as err:
            raise attach_error(f"iterator {self.target}", err) from err
        chunks: list[bytes] = []
        try:
            while True:
                chunk = os.read(reader.fileno(), _CHUNK)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        finally:
            reader.close()


def attach_iter(prog_fd: int, target: str = "") -> IterLink:
    """Attach a loaded iterator program (``target`` labels the link: ``"task"``...)."""
    try:
        link = bpf.link_create(prog_fd, 0, AttachType.TRACE_ITER)
    except OSError as err:
        raise attach_error(f"iterator {target}", err) from err
    return IterLink("iter", target, [link])
