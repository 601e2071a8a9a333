from __future__ import annotations

import os
from pathlib import Path

from bpfnb.doctor import headers


def _headers_tree(root: Path, release: str) -> Path:
    tree = root / "src" / f"linux-headers-{release}"
    (tree / "include").mkdir(parents=True)
    (tree / "Makefile").write_text("")
    modules = root / "modules" / release
    modules.mkdir(parents=True)
    (modules / "build").symlink_to(tree)
    return tree


def test_nearest_prefers_closest_version(tmp_path: Path) -> None:
    for release in ("5.10.0-1-amd64", "6.1.0-56-amd64", "6.12.1-amd64"):
        _headers_tree(tmp_path, release)
    trees = headers.installed_header_trees(str(tmp_path / "modules"))
    assert headers.nearest("6.18.44-x", trees).release == "6.12.1-amd64"
    assert headers.nearest("6.2.0", trees).release == "6.1.0-56-amd64"
    assert headers.nearest("6.2.0", []) is None


def test_link_nearest_creates_build_and_source_links(tmp_path: Path) -> None:
    tree = _headers_tree(tmp_path, "6.1.0-56-amd64")
    root = str(tmp_path / "modules")
    fix = headers.link_nearest("6.18.0-test", root)
    assert fix is not None and fix.from_release == "6.1.0-56-amd64"
    build = Path(root) / "6.18.0-test" / "build"
    assert os.path.realpath(build) == str(tree)
    assert "6.18.0-test" in fix.describe() and str(tree) in fix.describe()
    # A second run changes nothing.
    assert headers.link_nearest("6.18.0-test", root) is None


def test_link_nearest_without_any_headers(tmp_path: Path) -> None:
    assert headers.link_nearest("6.18.0-test", str(tmp_path)) is None
