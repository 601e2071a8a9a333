"""``attach_usdt()``: one uprobe at each site of a USDT probe, keeping its semaphore set."""

from __future__ import annotations

from bpfnb.errors import AttachError
from bpfnb.link.fdlink import FdLink
from bpfnb.link.uprobe import attach_uprobe
from bpfnb.usdt.listing import read_probes
from bpfnb.usdt.notes import UsdtNote

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
) -> list[FdLink]:
    """Run a uprobe-type program (``BPF_PROG_TYPE_KPROBE``) at every site of USDT probe
    ``provider:name`` in ``path_or_lib``; returns one link per site.

    A probe with a semaphore has it incremented by the kernel (``ref_ctr_offset``) in every
    process that maps the file, for as long as the links live, so that code guarded by
    ``PROVIDER_NAME_ENABLED()`` runs. ``pid`` limits the probe to one process; ``method`` is
    :func:`bpfnb.link.attach_uprobe`'s. The program reads arguments through each site's spec
    (:func:`bpfnb.usdt.pack_spec` of ``site.arguments``).
    """
    links: list[FdLink] = []
    try:
        for site in find_sites(path_or_lib, provider, name):
            link = attach_uprobe(
                prog_fd,
                site.path,
                site.offset,
                pid=pid,
                method=method,
                ref_ctr_offset=site.semaphore_offset,
            )
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
