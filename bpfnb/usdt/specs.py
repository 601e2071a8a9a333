"""libbpf's USDT argument specs (``usdt.bpf.h``): the maps a ``BPF_USDT`` program reads.

A program built with ``usdt.bpf.h`` finds how to fetch its arguments in ``__bpf_usdt_specs``
(spec id → ``struct __bpf_usdt_spec``). It learns its spec id from the attach cookie, or, on
kernels without BPF cookies (before 5.15), by looking its instruction pointer up in
``__bpf_usdt_ip_to_spec_id``. :class:`SpecTable` fills both as libbpf does: one spec per
distinct (arguments, user cookie), and one address entry per site while it is attached.
"""

from __future__ import annotations

import ctypes as ct
import os

from bpfnb.errors import AttachError
from bpfnb.sys import bpf, features
from bpfnb.usdt.args import pack_spec
from bpfnb.usdt.notes import UsdtNote

__all__ = ["IP_MAP", "SPECS_MAP", "SpecTable", "absolute_address"]

SPECS_MAP = "__bpf_usdt_specs"
IP_MAP = "__bpf_usdt_ip_to_spec_id"

_ET_EXEC = 2  # an ELF executable linked at a fixed address (not PIE)


class SpecTable:
    """The spec ids an object has handed out, and the two maps they live in.

    ``use_cookie`` (the kernel has BPF cookies, as the loader told the program through
    ``LINUX_HAS_BPF_COOKIE``) makes each site's spec id its uprobe's cookie; otherwise the
    site's absolute address maps to it.
    """

    def __init__(
        self, specs_fd: int, capacity: int, ips_fd: int | None, use_cookie: bool | None = None
    ) -> None:
        self.specs_fd = specs_fd
        self.capacity = capacity
        self.ips_fd = ips_fd
        self.use_cookie = features.bpf_cookie() if use_cookie is None else use_cookie
        self._ids: dict[bytes, int] = {}
        # address -> (its spec id, how many attached sites use it)
        self._addresses: dict[int, tuple[int, int]] = {}

    def spec_id(self, site: UsdtNote, cookie: int) -> int:
        """The id of the spec for ``site``'s arguments with ``cookie``, written on first use."""
        try:
            spec = pack_spec(site.arguments, cookie)
        except ValueError as err:
            raise AttachError(
                f"USDT {site.probe} at {site.path}:{site.offset:#x}: {err} "
                f"(its arguments: {site.arguments!r})"
            ) from None
        known = self._ids.get(spec)
        if known is not None:
            return known
        if len(self._ids) >= self.capacity:
            raise AttachError(
                f"USDT {site.probe}: {SPECS_MAP} holds {self.capacity} specs and all are used "
                "(define BPF_USDT_MAX_SPEC_CNT larger before including usdt.bpf.h)"
            )
        new = len(self._ids)
        bpf.map_update(self.specs_fd, ct.c_uint32(new), ct.create_string_buffer(spec, len(spec)))
        self._ids[spec] = new
        return new

    def map_address(self, site: UsdtNote, spec_id: int, pid: int) -> int:
        """Record ``site``'s absolute address → ``spec_id`` (for kernels without cookies);
        returns the address, the key to :meth:`unmap_address` once detached."""
        if self.ips_fd is None:
            raise AttachError(f"USDT {site.probe}: the object has no {IP_MAP} map")
        address = absolute_address(site, pid)
        known, users = self._addresses.get(address, (spec_id, 0))
        if known != spec_id:
            raise AttachError(
                f"USDT {site.probe} at {address:#x} is attached already with another cookie; "
                "without BPF cookies (before Linux 5.15) a site has one spec per object"
            )
        bpf.map_update(self.ips_fd, ct.c_int64(address), ct.c_uint32(spec_id))
        self._addresses[address] = (spec_id, users + 1)
        return address

    def unmap_address(self, address: int) -> None:
        """Forget an address :meth:`map_address` recorded, once no attached site uses it."""
        spec_id, users = self._addresses.pop(address, (0, 0))
        if users > 1:
            self._addresses[address] = (spec_id, users - 1)
        elif self.ips_fd is not None:
            bpf.map_delete(self.ips_fd, ct.c_int64(address))


def absolute_address(site: UsdtNote, pid: int) -> int:
    """Where ``site``'s instruction is in process ``pid`` (-1: any process, which only a file
    linked at a fixed address allows)."""
    if _elf_type(site.path) == _ET_EXEC:
        return site.address
    if pid == -1:
        raise AttachError(
            f"USDT {site.probe} in {site.path}: this kernel has no BPF cookies (before 5.15), so "
            "a program finds its site by address, and a PIE or a shared library has one only "
            "within a process: pass pid="
        )
    target = os.stat(site.path)
    device = f"{os.major(target.st_dev):02x}:{os.minor(target.st_dev):02x}"
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) < 6:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            file_offset = int(fields[2], 16)
            if (fields[3], int(fields[4])) != (device, target.st_ino) or "x" not in fields[1]:
                continue
            if file_offset <= site.offset < file_offset + (end - start):
                return start + site.offset - file_offset
    raise AttachError(f"USDT {site.probe}: process {pid} does not map {site.path}'s code")


def _elf_type(path: str) -> int:
    with open(path, "rb") as f:
        header = f.read(18)
    return int.from_bytes(header[16:18], "little" if header[5] == 1 else "big")  # EI_DATA
