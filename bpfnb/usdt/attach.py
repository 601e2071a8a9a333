"""``attach_usdt()``: one uprobe at each site of a USDT probe, keeping its semaphore set."""

from __future__ import annotations

from bpfnb.errors import AttachError
from bpfnb.link.fdlink import FdLink
from bpfnb.link.uprobe import attach_uprobe
from bpfnb.usdt.listing import read_probes
from bpfnb.usdt.notes import UsdtNote
from bpfnb.usdt.specs import SpecTable

__all__ = ["attach_usdt", "find_sites"]


def find_sites(path_or_lib: str, provider: str, name: str) -> list[UsdtNote]:
    """The sites of probe ``provider:name`` in a file; AttachError (naming the probes the file
    has) when there are none."""
    notes = read_probes(path_or_lib)
    sites = [n for n in notes if n.provider == provider and n.name == name]
    if not sites:
        known = sorted({n.probe for n in notes})
        where = notes[0].path if notes else path_or_lib
        listing = ", ".join(known) if known else "none"
        raise AttachError(f"no USDT probe {provider}:{name} in {where} (its probes: {listing})")
    return sites


def attach_usdt(
    prog_fd: int,
    path_or_lib: str,
    provider: str,
    name: str,
    pid: int = -1,
    method: str = "auto",
    cookie: int = 0,
    specs: SpecTable | None = None,
) -> list[FdLink]:
    """Run a uprobe-type program (``BPF_PROG_TYPE_KPROBE``) at every site of USDT probe
    ``provider:name`` in ``path_or_lib``; returns one link per site.

    A probe with a semaphore has it incremented by the kernel (``ref_ctr_offset``) in every
    process that maps the file, for as long as the links live, so that code guarded by
    ``PROVIDER_NAME_ENABLED()`` runs. ``pid`` limits the probe to one process; ``method`` is
    :func:`bpfnb.link.attach_uprobe`'s.

    With ``specs`` (a program built with libbpf's ``usdt.bpf.h``), each site's argument spec
    goes into the object's spec map, and the program finds it by its attach cookie (or by the
    site's address on kernels without cookies); ``cookie`` is then what ``bpf_usdt_cookie()``
    returns. Without ``specs``, ``cookie`` is the attach cookie itself
    (``bpf_get_attach_cookie()``).
    """
    links: list[FdLink] = []
    try:
        for site in find_sites(path_or_lib, provider, name):
            link = _attach_site(prog_fd, site, pid, method, cookie, specs)
            link.kind = "usdt"
            link.target = f"{site.probe}@{site.path}:{site.offset:#x}" + (
                f" (pid {pid})" if pid != -1 else ""
            )
            links.append(link)
    except BaseException:
        for link in links:
            link.close()
        raise
    return links


def _attach_site(
    prog_fd: int, site: UsdtNote, pid: int, method: str, cookie: int, specs: SpecTable | None
) -> FdLink:
    # One uprobe; with libbpf's spec maps, the site's spec written first and found by the
    # program through the cookie, or (no cookies in this kernel) through its address.
    address = None
    if specs is not None:
        spec_id = specs.spec_id(site, cookie)
        if specs.use_cookie:
            cookie = spec_id
        else:
            address, cookie = specs.map_address(site, spec_id, pid), 0
    try:
        link = attach_uprobe(
            prog_fd,
            site.path,
            site.offset,
            pid=pid,
            method=method,
            ref_ctr_offset=site.semaphore_offset,
            cookie=cookie,
        )
    except BaseException:
        if specs is not None and address is not None:
            specs.unmap_address(address)
        raise
    if specs is not None and address is not None:
        table, mapped = specs, address
        link.after_close(lambda: table.unmap_address(mapped))
    return link
