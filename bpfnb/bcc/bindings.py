"""Find the distribution's bcc bindings, which a virtualenv cannot see.

Debian/Ubuntu ship them as ``python3-bpfcc`` in ``/usr/lib/python3/dist-packages/bcc``, Fedora
as ``python3-bcc`` in ``/usr/lib/python3.X/site-packages/bcc``. When ``import bcc`` fails, the
package is imported from exactly that directory, without adding the rest of the system's
packages to ``sys.path``. The PyPI project named ``bcc`` is unrelated and is never used.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from types import ModuleType

from bpfnb.errors import BccMissingError

__all__ = ["SEARCH_PATTERNS", "find_bcc_dir", "import_bcc"]

SEARCH_PATTERNS = (
    "/usr/lib/python3/dist-packages/bcc",
    "/usr/lib/python3*/site-packages/bcc",
    "/usr/lib64/python3*/site-packages/bcc",
    "/usr/local/lib/python3*/dist-packages/bcc",
    "/usr/share/bcc/python/bcc",
)

_INSTALL_HINT = (
    "bpfnb needs the bcc Python bindings from your distribution: on Debian/Ubuntu "
    "`apt-get install python3-bpfcc libbpfcc`, on Fedora `dnf install python3-bcc`. "
    "(The PyPI package named `bcc` is an unrelated project.)"
)


def _is_real_bcc(module: ModuleType) -> bool:
    return hasattr(module, "BPF") and hasattr(module, "lib")


def find_bcc_dir() -> str | None:
    """The directory of the system's ``bcc`` package, or None."""
    for pattern in SEARCH_PATTERNS:
        for path in sorted(glob.glob(pattern), reverse=True):
            if os.path.isfile(os.path.join(path, "__init__.py")) and os.path.isfile(
                os.path.join(path, "libbcc.py")
            ):
                return path
    return None


def import_bcc() -> ModuleType:
    """Import and return the ``bcc`` bindings; raises ``BccMissingError`` with what to install."""
    existing = sys.modules.get("bcc")
    if existing is not None and _is_real_bcc(existing):
        return existing
    if existing is None and importlib.util.find_spec("bcc") is not None:
        import bcc

        if _is_real_bcc(bcc):
            return bcc
        del sys.modules["bcc"]
    path = find_bcc_dir()
    if path is None:
        raise BccMissingError(f"the bcc bindings were not found. {_INSTALL_HINT}")
    spec = importlib.util.spec_from_file_location(
        "bcc", os.path.join(path, "__init__.py"), submodule_search_locations=[path]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bcc"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        for name in [n for n in sys.modules if n == "bcc" or n.startswith("bcc.")]:
            del sys.modules[name]
        raise BccMissingError(
            f"the bcc bindings in {path} could not be loaded ({err}); libbcc may be missing. "
            f"{_INSTALL_HINT}"
        ) from err
    return module
