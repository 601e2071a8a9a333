"""What to tell the user when the kernel refuses a program for something it lacks rather than
something the program does wrong."""

from __future__ import annotations

import re

from bpfnb.elf.spec import ProgramSpec
from bpfnb.errors import KernelFeatureError, VerifierError

__all__ = ["verifier_refused"]

_NO_ADDRESS = re.compile(r"failed to find the address for kernel symbol '([^']+)'")


def verifier_refused(prog: ProgramSpec, err: VerifierError) -> KernelFeatureError | None:
    """The verifier's rejections that say the kernel lacks something, not that the program is
    wrong; None for the others."""
    missing = _NO_ADDRESS.search(err.log)
    if missing:
        # check_pseudo_btf_id() looks a __ksym variable's address up in kallsyms, which lists
        # variables only with CONFIG_KALLSYMS_ALL.
        return KernelFeatureError(
            f"__ksym {missing.group(1)} (program {prog.name!r})",
            "the kernel's BTF describes this variable, but the kernel cannot find its address: "
            "its kallsyms lists no variables (it was built without CONFIG_KALLSYMS_ALL)",
        )
    return None
