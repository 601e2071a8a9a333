"""Without the capabilities, loading fails with PrivilegeError naming what is missing."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import need

SCRIPT = """
import bpfnb
from bpfnb.sys import bpf, MapType
for attempt in (
    lambda: bpfnb.compile("TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }"),
    lambda: bpf.map_create(MapType.ARRAY, 4, 4, 1),
):
    try:
        attempt()
        print("loaded")
    except bpfnb.PrivilegeError as err:
        print("PrivilegeError", err.capability)
"""


def test_missing_capabilities_give_privilege_error() -> None:
    need(shutil.which("setpriv") is not None, "setpriv (util-linux) is not installed")
    dropped = ["setpriv", "--bounding-set", "-bpf,-sys_admin,-perfmon"]
    out = subprocess.run(
        [*dropped, sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == ["PrivilegeError CAP_BPF (or CAP_SYS_ADMIN)"] * 2
