"""Kernel headers for bcc: find them, and link the nearest installed ones when none match.

bcc compiles against ``/lib/modules/$(uname -r)/build``. Distributions ship headers only for
their own kernels, so a custom kernel (a VM's, a cloud image's) often has none. The nearest
installed version works for everything bcc reads from tracefs (tracepoint ``args``); struct
layouts taken from the headers may differ from the running kernel's.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ["HeadersFix", "build_dir", "installed_header_trees", "link_nearest", "nearest", "usable"]

MODULES_ROOT = "/lib/modules"


@dataclass(frozen=True)
class HeaderTree:
    """An installed headers tree: the release it belongs to and its build/source directories."""

    release: str
    build: str
    source: str | None


@dataclass(frozen=True)
class HeadersFix:
    """What :func:`link_nearest` changed."""

    release: str
    links: dict[str, str]
    from_release: str

    def describe(self) -> str:
        made = ", ".join(f"{link} -> {target}" for link, target in self.links.items())
        return (
            f"no headers match kernel {self.release}; linked the nearest installed "
            f"({self.from_release}): {made}"
        )


def build_dir(release: str | None = None, root: str = MODULES_ROOT) -> str:
    return os.path.join(root, release or os.uname().release, "build")


def usable(path: str) -> bool:
    """Whether ``path`` looks like a kernel headers tree bcc can compile against."""
    return os.path.isfile(os.path.join(path, "Makefile")) and os.path.isdir(
        os.path.join(path, "include")
    )


def _version(release: str) -> tuple[int, ...]:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not match:
        return (0, 0, 0)
    return tuple(int(part or 0) for part in match.groups())


def installed_header_trees(root: str = MODULES_ROOT) -> list[HeaderTree]:
    """Every release under ``root`` whose ``build`` link leads to usable headers."""
    trees: list[HeaderTree] = []
    if not os.path.isdir(root):
        return trees
    for release in sorted(os.listdir(root)):
        build = os.path.join(root, release, "build")
        if usable(build):
            source = os.path.join(root, release, "source")
            trees.append(
                HeaderTree(
                    release,
                    os.path.realpath(build),
                    os.path.realpath(source) if os.path.isdir(source) else None,
                )
            )
    return trees


def nearest(release: str, trees: list[HeaderTree]) -> HeaderTree | None:
    """The tree closest in version to ``release``; among equals, the newer."""
    if not trees:
        return None
    target = _version(release)

    def distance(tree: HeaderTree) -> tuple[int, ...]:
        version = _version(tree.release)
        return tuple(abs(a - b) for a, b in zip(target, version)) + tuple(-v for v in version)

    return min(trees, key=distance)


def link_nearest(release: str | None = None, root: str = MODULES_ROOT) -> HeadersFix | None:
    """Point ``build`` and ``source`` for ``release`` at the nearest installed headers.

    Returns what was changed, or None when nothing needed to change or nothing is installed.
    Existing ``build``/``source`` entries are replaced only when they are dangling links.
    """
    release = release or os.uname().release
    if usable(build_dir(release, root)):
        return None
    candidates = [tree for tree in installed_header_trees(root) if tree.release != release]
    tree = nearest(release, candidates)
    if tree is None:
        return None
    directory = os.path.join(root, release)
    os.makedirs(directory, exist_ok=True)
    links = {}
    for name, target in (("build", tree.build), ("source", tree.source or tree.build)):
        link = os.path.join(directory, name)
        if os.path.islink(link) and not os.path.exists(link):
            os.unlink(link)
        if not os.path.lexists(link):
            os.symlink(target, link)
            links[link] = target
    return HeadersFix(release, links, tree.release)
