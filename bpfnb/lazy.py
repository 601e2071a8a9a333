"""Heavy dependencies imported on first use, so that ``import bpfnb`` stays fast.

:func:`lazy_import` is the standard library's recipe (``importlib.util.LazyLoader``): the
module object exists at once, and its code runs when an attribute is first read. pandas, the
slowest of bpfnb's dependencies to import, loads this way.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__all__ = ["lazy_import"]


def lazy_import(name: str) -> ModuleType:
    """Module ``name``, loaded when first used (at once when it is already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
