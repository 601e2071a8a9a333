"""__ksym externs without the kernel: how the reader records them, how the object's BTF is
fixed up for the kernel, and how resolved externs are written into instructions."""

from __future__ import annotations

import struct

from bpfnb.elf import btf, read
from bpfnb.elf.btf_fixup import DUMMY_KSYM, for_kernel
from bpfnb.elf.ksyms import KernelSymbol, apply_externs
from bpfnb.elf.spec import ExternReference


def test_externs_are_read_with_their_btf(clang_build):
    spec = read(clang_build("elf_ksym_weak"))
    kinds = {n: (e.func, e.weak, e.typeless) for n, e in spec.externs.items()}
    assert kinds == {
        "bpf_iter_num_destroy": (True, True, False),
        "bpfnb_no_such_kfunc": (True, True, False),
        "bpfnb_no_such_variable": (False, True, False),
        "bpfnb_no_such_symbol": (False, True, True),
    }
    uses = spec.programs["which_exist"].externs
    assert {(r.name, r.call) for r in uses} == {
        ("bpf_iter_num_destroy", False),
        ("bpfnb_no_such_kfunc", False),
        ("bpfnb_no_such_kfunc", True),
        ("bpfnb_no_such_variable", False),
        ("bpfnb_no_such_symbol", False),
    }
    assert spec.btf.kind_of(spec.externs["bpfnb_no_such_kfunc"].type_id) == "FUNC_PROTO"


def test_the_kernels_btf_has_ksyms_as_int_variables_and_global_kfuncs(clang_build):
    spec = read(clang_build("elf_ksym_weak"))
    fixed = btf.parse(for_kernel(spec.btf, spec.section_sizes, spec.symbol_offsets))
    assert len(fixed) == len(spec.btf) + 1  # the dummy variable
    datasec = fixed.find(".ksyms", "DATASEC")
    assert datasec is not None and datasec.size == 4 * len(datasec.members)
    dummy = fixed.find_id(DUMMY_KSYM, "VAR")
    for i, entry in enumerate(datasec.members):
        assert (entry.offset, entry.size) == (4 * i, 4)
        var = fixed.type(entry.type_id)
        assert var.kind == "VAR" and var.linkage == 1  # allocated, as the kernel requires
        assert fixed.type_name(var.type_id) == "int"
    funcs = [fixed.type(e.type_id) for e in spec.btf.find(".ksyms", "DATASEC").members]
    for func in (f for f in funcs if f.kind == "FUNC"):
        assert fixed.type(func.id).linkage == 1  # extern → global
        assert all(p.name for p in fixed.type(fixed.type(func.id).type_id).members)
    assert dummy == len(fixed) - 1


def test_hidden_functions_become_static(clang_build):
    spec = read(clang_build("elf_hidden"))
    assert spec.hidden_functions == ["tenfold"]
    plain = btf.parse(for_kernel(spec.btf, spec.section_sizes, spec.symbol_offsets))
    fixed = btf.parse(
        for_kernel(spec.btf, spec.section_sizes, spec.symbol_offsets, spec.hidden_functions)
    )
    assert plain.find("tenfold", "FUNC").linkage == 1  # global, as clang wrote it
    assert fixed.find("tenfold", "FUNC").linkage == 0  # static
    assert fixed.find("call_hidden", "FUNC").linkage == 1


def test_resolved_externs_are_written_into_instructions():
    call = struct.pack("<BBhi", 0x85, 0x10, 0, -1)  # call -1 (src_reg 1), as clang emits
    load = struct.pack("<BBhi", 0x18, 0x01, 0, 0) + struct.pack("<BBhi", 0, 0, 0, 0)
    code = call * 2 + load * 3
    refs = [
        ExternReference(0, "kfunc", True),
        ExternReference(1, "module_kfunc", True),
        ExternReference(2, "typed", False),
        ExternReference(4, "typeless", False),
        ExternReference(6, "absent", False),
    ]
    resolved = {
        "kfunc": KernelSymbol(btf_id=1234),
        "module_kfunc": KernelSymbol(btf_id=77, btf_fd=9, fd_index=1),
        "typed": KernelSymbol(btf_id=555, btf_fd=9),
        "typeless": KernelSymbol(address=0xFFFFFFFF81234567),
        "absent": KernelSymbol(),
    }
    out = apply_externs(code, refs, resolved)
    insns = [struct.unpack_from("<BBhi", out, 8 * i) for i in range(8)]
    assert insns[0] == (0x85, 0x20, 0, 1234)  # BPF_PSEUDO_KFUNC_CALL, vmlinux
    assert insns[1] == (0x85, 0x20, 1, 77)  # a module's: its BTF fd at fd_array[1]
    assert insns[2] == (0x18, 0x31, 0, 555) and insns[3][3] == 9  # BPF_PSEUDO_BTF_ID
    assert insns[4] == (0x18, 0x01, 0, 0x81234567 - (1 << 32)) and insns[5][3] == -1
    assert insns[6] == (0x18, 0x01, 0, 0) and insns[7][3] == 0  # absent: address 0
