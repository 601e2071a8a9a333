"""bpfnb.sys.kallsyms: names found in a kallsyms file without parsing every line."""

from __future__ import annotations

from bpfnb.sys import kallsyms

SAMPLE = (
    "ffffffff81000000 T _stext\n"
    "ffffffff814e0370 T __x64_sys_bpf\n"
    "ffffffff814e0380 t __x64_sys_bpf_helper\n"  # longer names that start the same
    "ffffffff82000010 d counter.llvm.123456\n"  # a data symbol LLVM renamed
    "ffffffff82000020 t helper.llvm.99\n"  # text: not renamed data, not "helper"
    "ffffffffc0001000 t mod_fn\t[some_module]\n"
    "ffffffffc0002000 t mod_fn\t[other_module]\n"
    "ffffffff83000000 D x__x64_sys_bpf\n"
    "0000000000000000 A fixed_percpu_data"
)


def test_lookup_finds_whole_names_only(tmp_path):
    path = tmp_path / "kallsyms"
    path.write_text(SAMPLE)
    found = kallsyms.lookup(
        ["__x64_sys_bpf", "counter", "helper", "mod_fn", "fixed_percpu_data", "absent"], path
    )
    assert found["__x64_sys_bpf"] == [(0xFFFFFFFF814E0370, "T")]
    assert found["counter"] == [(0xFFFFFFFF82000010, "d")]
    assert "helper" not in found and "absent" not in found
    assert found["mod_fn"] == [(0xFFFFFFFFC0001000, "t"), (0xFFFFFFFFC0002000, "t")]
    assert found["fixed_percpu_data"] == [(0, "A")]  # the last line has no newline
