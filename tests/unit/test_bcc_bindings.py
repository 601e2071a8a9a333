from __future__ import annotations

import subprocess
import sys

import pytest

from bpfnb.bcc import bindings as loader
from bpfnb.errors import BccMissingError, BpfError


def test_import_bpfnb_does_not_import_bcc() -> None:
    code = "import sys, bpfnb, bpfnb.sys, bpfnb.frames; print('bcc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_bindings_raise_typed_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(loader, "SEARCH_PATTERNS", (str(tmp_path / "nothing" / "bcc"),))
    monkeypatch.delitem(sys.modules, "bcc", raising=False)
    monkeypatch.setattr(loader.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BccMissingError) as info:
        loader.import_bcc()
    assert "python3-bpfcc" in str(info.value)
    assert isinstance(info.value, BpfError) and isinstance(info.value, ImportError)


def test_only_the_bcc_package_joins_sys_path() -> None:
    if loader.find_bcc_dir() is None:
        pytest.skip("the distribution's bcc bindings are not installed")
    code = (
        "import sys; before = list(sys.path); from bpfnb.bcc import import_bcc; "
        "b = import_bcc(); print(sys.path == before, b.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    same_path, location = out.stdout.split()
    assert same_path == "True"
    assert location.startswith(loader.find_bcc_dir())
