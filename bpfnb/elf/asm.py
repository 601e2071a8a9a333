"""An eBPF disassembler in the kernel's C-like syntax (as ``bpftool``/``llvm-objdump`` print).

Map loads show the map's name, calls show the helper's name or the subprogram's, and jump
targets become labels. The result is a ``str`` that renders with syntax highlighting in a
notebook.
"""

from __future__ import annotations

import html
import struct
from collections.abc import Iterator, Mapping

__all__ = ["HELPERS", "Disassembly", "disassemble_bytes", "instructions"]

# ``enum bpf_func_id`` (``__BPF_FUNC_MAPPER`` in include/uapi/linux/bpf.h), by number.
_HELPER_NAMES = """unspec map_lookup_elem map_update_elem map_delete_elem probe_read ktime_get_ns
    trace_printk get_prandom_u32 get_smp_processor_id skb_store_bytes l3_csum_replace
    l4_csum_replace tail_call
    clone_redirect get_current_pid_tgid get_current_uid_gid get_current_comm get_cgroup_classid
    skb_vlan_push skb_vlan_pop skb_get_tunnel_key skb_set_tunnel_key perf_event_read redirect
    get_route_realm perf_event_output skb_load_bytes get_stackid csum_diff skb_get_tunnel_opt
    skb_set_tunnel_opt skb_change_proto skb_change_type skb_under_cgroup get_hash_recalc
    get_current_task probe_write_user current_task_under_cgroup skb_change_tail skb_pull_data
    csum_update set_hash_invalid get_numa_node_id skb_change_head xdp_adjust_head probe_read_str
    get_socket_cookie get_socket_uid set_hash setsockopt skb_adjust_room redirect_map
    sk_redirect_map sock_map_update xdp_adjust_meta perf_event_read_value perf_prog_read_value
    getsockopt override_return sock_ops_cb_flags_set msg_redirect_map msg_apply_bytes
    msg_cork_bytes msg_pull_data bind xdp_adjust_tail skb_get_xfrm_state get_stack
    skb_load_bytes_relative fib_lookup sock_hash_update msg_redirect_hash sk_redirect_hash
    lwt_push_encap lwt_seg6_store_bytes lwt_seg6_adjust_srh lwt_seg6_action rc_repeat rc_keydown
    skb_cgroup_id get_current_cgroup_id get_local_storage sk_select_reuseport
    skb_ancestor_cgroup_id sk_lookup_tcp sk_lookup_udp sk_release map_push_elem map_pop_elem
    map_peek_elem msg_push_data msg_pop_data rc_pointer_rel spin_lock spin_unlock sk_fullsock
    tcp_sock skb_ecn_set_ce get_listener_sock skc_lookup_tcp tcp_check_syncookie sysctl_get_name
    sysctl_get_current_value sysctl_get_new_value sysctl_set_new_value strtol strtoul
    sk_storage_get sk_storage_delete send_signal tcp_gen_syncookie skb_output probe_read_user
    probe_read_kernel probe_read_user_str probe_read_kernel_str tcp_send_ack send_signal_thread
    jiffies64 read_branch_records get_ns_current_pid_tgid xdp_output get_netns_cookie
    get_current_ancestor_cgroup_id sk_assign ktime_get_boot_ns seq_printf seq_write sk_cgroup_id
    sk_ancestor_cgroup_id ringbuf_output ringbuf_reserve ringbuf_submit ringbuf_discard
    ringbuf_query csum_level skc_to_tcp6_sock skc_to_tcp_sock skc_to_tcp_timewait_sock
    skc_to_tcp_request_sock skc_to_udp6_sock get_task_stack load_hdr_opt store_hdr_opt
    reserve_hdr_opt inode_storage_get inode_storage_delete d_path copy_from_user snprintf_btf
    seq_printf_btf skb_cgroup_classid redirect_neigh per_cpu_ptr this_cpu_ptr redirect_peer
    task_storage_get task_storage_delete get_current_task_btf bprm_opts_set ktime_get_coarse_ns
    ima_inode_hash sock_from_file check_mtu for_each_map_elem snprintf sys_bpf
    btf_find_by_name_kind sys_close timer_init timer_set_callback timer_start timer_cancel
    get_func_ip get_attach_cookie task_pt_regs get_branch_snapshot trace_vprintk
    skc_to_unix_sock kallsyms_lookup_name find_vma loop strncmp get_func_arg get_func_ret
    get_func_arg_cnt get_retval set_retval xdp_get_buff_len xdp_load_bytes xdp_store_bytes
    copy_from_user_task skb_set_tstamp ima_file_hash kptr_xchg map_lookup_percpu_elem
    skc_to_mptcp_sock dynptr_from_mem ringbuf_reserve_dynptr ringbuf_submit_dynptr
    ringbuf_discard_dynptr dynptr_read dynptr_write dynptr_data tcp_raw_gen_syncookie_ipv4
    tcp_raw_gen_syncookie_ipv6 tcp_raw_check_syncookie_ipv4 tcp_raw_check_syncookie_ipv6
    ktime_get_tai_ns user_ringbuf_drain cgrp_storage_get cgrp_storage_delete"""
HELPERS = tuple(_HELPER_NAMES.split())

_ALU_OPS = {
    0x00: "+=", 0x10: "-=", 0x20: "*=", 0x30: "/=", 0x40: "|=", 0x50: "&=", 0x60: "<<=",
    0x70: ">>=", 0x90: "%=", 0xA0: "^=", 0xB0: "=", 0xC0: "s>>=",
}  # fmt: skip
_JMP_OPS = {
    0x10: "==", 0x20: ">", 0x30: ">=", 0x40: "&", 0x50: "!=", 0x60: "s>", 0x70: "s>=",
    0xA0: "<", 0xB0: "<=", 0xC0: "s<", 0xD0: "s<=",
}  # fmt: skip
_SIZES = {0x00: "u32", 0x08: "u16", 0x10: "u8", 0x18: "u64"}
_SIGNED_SIZES = {0x00: "s32", 0x08: "s16", 0x10: "s8", 0x18: "s64"}
_ATOMIC_OPS = {0x00: "+=", 0x40: "|=", 0x50: "&=", 0xA0: "^="}
_ATOMIC_FETCH_NAMES = {0x00: "add", 0x40: "or", 0x50: "and", 0xA0: "xor"}


class Disassembly(str):
    """Assembly text; shown with syntax highlighting in a notebook."""

    def _repr_html_(self) -> str:
        try:
            from pygments import highlight
            from pygments.formatters import HtmlFormatter
        except ImportError:  # pragma: no cover - pygments comes with IPython
            return f"<pre>{html.escape(self)}</pre>"
        return highlight(str(self), _lexer(), HtmlFormatter(noclasses=True, nobackground=True))

    def __repr__(self) -> str:
        return str(self)


def _lexer() -> object:
    from pygments.lexer import RegexLexer
    from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, Text

    class BpfLexer(RegexLexer):
        name = "eBPF"
        tokens = {  # noqa: RUF012 - the pygments API
            "root": [
                (r";.*$", Comment),
                (r"^[A-Za-z_.][\w.]*:", Name.Label),
                (r"\b\d+:", Comment.Special),
                (
                    r"\b(call|goto|exit|if|lock|ll|be16|be32|be64|le16|le32|le64|bswap16|bswap32|"
                    r"bswap64|map|fetch|xchg|cmpxchg)\b",
                    Keyword,
                ),  # fmt: skip
                (r"\b[rw]\d+\b", Name.Variable),
                (r"\b(u8|u16|u32|u64|s8|s16|s32|s64)\b", Keyword.Type),
                (r"-?0x[0-9a-fA-F]+|-?\d+", Number),
                (r"[=+\-*/%&|^<>!s]+", Operator),
                (r"[()\[\]*,]", Punctuation),
                (r"[A-Za-z_.][\w.#]*", Name.Function),
                (r"\s+", Text),
            ]
        }

    return BpfLexer()


def instructions(code: bytes) -> Iterator[tuple[int, int, int, int, int, int]]:
    """(index, opcode, dst, src, off, imm) of each 8-byte instruction slot."""
    for i, (opcode, regs, off, imm) in enumerate(struct.iter_unpack("<BBhi", code)):
        yield i, opcode, regs & 0x0F, regs >> 4, off, imm


def disassemble_bytes(
    code: bytes,
    functions: Mapping[int, str] | None = None,
    references: Mapping[int, object] | None = None,
    source: Mapping[int, object] | None = None,
) -> Disassembly:
    """Disassemble raw instructions. ``functions`` names instruction indexes; ``references``
    maps instruction indexes to :class:`~bpfnb.elf.spec.Reference` (map names); ``source``
    maps them to :class:`~bpfnb.elf.btf.LineInfo` (C lines shown as comments)."""
    code = code[: len(code) // 8 * 8]
    functions = dict(functions or {})
    references = references or {}
    source = source or {}
    insns = list(instructions(code))
    labels = _labels(insns, functions)
    out: list[str] = []
    skip = False
    shown = ""
    for i, opcode, dst, src, off, imm in insns:
        if skip:
            skip = False
            continue
        if i in labels:
            out.append(f"{labels[i]}:")
        text = getattr(source.get(i), "source", "")
        if text and text != shown:
            out.append(f"    ; {text}")
            shown = text
        if opcode == 0x18 and i + 1 < len(insns):
            skip = True
            text = _ld_imm64(dst, src, imm, insns[i + 1][5], references.get(i), i, labels)
        else:
            text = _one(i, opcode, dst, src, off, imm, labels)
        out.append(f"{i:5}: {text}")
    return Disassembly("\n".join(out))


def _labels(
    insns: list[tuple[int, int, int, int, int, int]], functions: dict[int, str]
) -> dict[int, str]:
    labels = dict(functions)
    targets: list[int] = []
    for i, opcode, _dst, src, off, imm in insns:
        cls, op = opcode & 0x07, opcode & 0xF0
        if cls in (0x05, 0x06) and op not in (0x80, 0x90):
            targets.append(i + 1 + (imm if (cls == 0x06 and op == 0x00) else off))
        elif opcode == 0x85 and src == 1 or opcode == 0x18 and src == 4:
            target = i + 1 + imm
            labels.setdefault(target, f"func_{target}")
    for n, target in enumerate(sorted(set(targets) - set(labels))):
        labels[target] = f"L{n}"
    return labels


def _reg(n: int, wide: bool = True) -> str:
    return f"{'r' if wide else 'w'}{n}"


def _ld_imm64(
    dst: int, src: int, lo: int, hi: int, ref: object, i: int, labels: dict[int, str]
) -> str:
    if src == 1:  # BPF_PSEUDO_MAP_FD
        name = getattr(ref, "map", None) or f"fd#{lo}"
        return f"r{dst} = map[{name}] ll"
    if src == 2:  # BPF_PSEUDO_MAP_VALUE
        name = getattr(ref, "map", None) or f"fd#{lo}"
        offset = getattr(ref, "offset", hi) if ref is not None else hi
        return f"r{dst} = &{name}[{offset}] ll"
    if src == 4:  # BPF_PSEUDO_FUNC
        return f"r{dst} = {labels.get(i + 1 + lo, i + 1 + lo)} ll"
    if src in (3, 5, 6):  # BTF ids / map indexes
        return f"r{dst} = pseudo{src}#{lo} ll"
    value = (lo & 0xFFFFFFFF) | ((hi & 0xFFFFFFFF) << 32)
    return f"r{dst} = {value:#x} ll"


def _one(
    i: int, opcode: int, dst: int, src: int, off: int, imm: int, labels: dict[int, str]
) -> str:
    cls = opcode & 0x07
    if cls in (0x04, 0x07):
        return _alu(cls == 0x07, opcode, dst, src, off, imm)
    if cls in (0x05, 0x06):
        return _jump(i, cls == 0x05, opcode, dst, src, off, imm, labels)
    size = opcode & 0x18
    mode = opcode & 0xE0
    if cls == 0x01:  # LDX
        if mode == 0x60:
            return f"r{dst} = *({_SIZES[size]} *)(r{src} {_offset(off)})"
        if mode == 0x80:
            return f"r{dst} = *({_SIGNED_SIZES[size]} *)(r{src} {_offset(off)})"
    elif cls == 0x00 and mode in (0x20, 0x40):  # legacy packet access
        where = f"{imm}" if mode == 0x20 else f"r{src} + {imm}"
        return f"r0 = *({_SIZES[size]} *)skb[{where}]"
    elif cls == 0x02 and mode == 0x60:  # ST
        return f"*({_SIZES[size]} *)(r{dst} {_offset(off)}) = {imm}"
    elif cls == 0x03:  # STX
        if mode == 0x60:
            return f"*({_SIZES[size]} *)(r{dst} {_offset(off)}) = r{src}"
        if mode == 0xC0:
            return _atomic(size, dst, src, off, imm)
    return f"<unknown opcode {opcode:#04x}>"


def _offset(off: int) -> str:
    return f"+ {off}" if off >= 0 else f"- {-off}"


def _atomic(size: int, dst: int, src: int, off: int, imm: int) -> str:
    where = f"*({_SIZES[size]} *)(r{dst} {_offset(off)})"
    reg = _reg(src, size == 0x18)
    if imm in _ATOMIC_OPS:
        return f"lock {where} {_ATOMIC_OPS[imm]} {reg}"
    if imm & 0x01 and imm & ~0x01 in _ATOMIC_FETCH_NAMES:
        return f"{reg} = atomic_fetch_{_ATOMIC_FETCH_NAMES[imm & ~0x01]}({where}, {reg})"
    if imm == 0xE1:
        return f"{reg} = xchg({where}, {reg})"
    if imm == 0xF1:
        return f"r0 = cmpxchg({where}, r0, {reg})"
    return f"<unknown atomic {imm:#x}>"


def _alu(wide: bool, opcode: int, dst: int, src: int, off: int, imm: int) -> str:
    op = opcode & 0xF0
    use_reg = bool(opcode & 0x08)
    d = _reg(dst, wide)
    if op == 0x80:
        return f"{d} = -{d}"
    if op == 0xD0:  # byte swaps act on the whole register, whatever the class
        kind = "bswap" if wide else ("be" if use_reg else "le")
        return f"r{dst} = {kind}{imm} r{dst}"
    operand = _reg(src, wide) if use_reg else str(imm)
    if op == 0xB0 and off in (8, 16, 32) and use_reg:
        return f"{d} = (s{off}){_reg(src, wide)}"
    symbol = _ALU_OPS.get(op)
    if symbol is None:
        return f"<unknown alu {opcode:#04x}>"
    if off == 1 and op in (0x30, 0x90):
        symbol = "s" + symbol
    return f"{d} {symbol} {operand}"


def _jump(
    i: int,
    wide: bool,
    opcode: int,
    dst: int,
    src: int,
    off: int,
    imm: int,
    labels: dict[int, str],
) -> str:
    op = opcode & 0xF0
    if op == 0x90:
        return "exit"
    if op == 0x80:
        if src == 1:
            target = i + 1 + imm
            return f"call {labels.get(target, target)}"
        if src == 2:
            return f"call kfunc#{imm}"
        helper = HELPERS[imm] if 0 <= imm < len(HELPERS) else f"#{imm}"
        return f"call bpf_{helper}" if not helper.startswith("#") else f"call helper{helper}"
    if op == 0x00:
        target = i + 1 + (off if wide else imm)
        return f"goto {labels.get(target, target)}"
    symbol = _JMP_OPS.get(op)
    if symbol is None:
        return f"<unknown jump {opcode:#04x}>"
    operand = _reg(src, wide) if opcode & 0x08 else str(imm)
    target = i + 1 + off
    return f"if {_reg(dst, wide)} {symbol} {operand} goto {labels.get(target, target)}"
