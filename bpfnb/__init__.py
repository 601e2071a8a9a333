"""bpfnb: explore eBPF in Jupyter."""

from bpfnb import errors
from bpfnb.errors import (
    AttachError,
    BpfError,
    CompileError,
    ElfError,
    KernelFeatureError,
    PrivilegeError,
    VerifierError,
)

__version__ = "0.1.0"

__all__ = [
    "AttachError",
    "BpfError",
    "CompileError",
    "ElfError",
    "KernelFeatureError",
    "PrivilegeError",
    "VerifierError",
    "errors",
]
