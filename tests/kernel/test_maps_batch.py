"""The batch snapshot path on maps made with bpf() directly: size, ENOSPC, per-CPU slots."""

from __future__ import annotations

import ctypes as ct
import errno
import os

import numpy as np
import pytest

from bpfnb.frames import layout_of
from bpfnb.maps import MapError, PerCpuArrayMap, open_map, possible_cpus
from bpfnb.sys import MapType, bpf

BPF_F_NO_PREALLOC = 1


class Key(ct.Structure):
    _fields_ = [("pid", ct.c_uint32), ("comm", ct.c_char * 16)]


class Value(ct.Structure):
    _fields_ = [("count", ct.c_uint64), ("bytes", ct.c_uint64)]


def _new(map_type: int, key: object, value: object, entries: int, flags: int = 0):
    key_layout, value_layout = layout_of(key), layout_of(value)
    fd = bpf.map_create(map_type, key_layout.size, value_layout.size, entries, flags, name="t")
    return open_map(
        fd,
        name="t",
        map_type=map_type,
        key=key_layout,
        value=value_layout,
        max_entries=entries,
        flags=flags,
    )


def test_100k_plain_entries_through_the_batch_path() -> None:
    n = 100_000
    with _new(MapType.HASH, ct.c_uint32, ct.c_uint64, n) as m:
        keys = np.arange(n, dtype=np.uint32)
        assert m.update_batch(keys, keys.astype(np.uint64) * 3 + 1) == n
        snap = m.snapshot()
        assert snap.batched and len(snap) == n
        frame = m.to_frame().sort_values("key")
        assert list(frame.columns) == ["key", "value"]
        assert (frame["key"].to_numpy() == keys).all()
        assert (frame["value"].to_numpy() == keys.astype(np.uint64) * 3 + 1).all()
        assert len(m) == n


def test_100k_struct_entries_through_the_batch_path() -> None:
    n = 100_000
    with _new(MapType.HASH, Key, Value, n) as m:
        keys = np.zeros(n, dtype=m.key_type.dtype)
        keys["pid"] = np.arange(n)
        keys["comm"] = [f"task{i % 7}".encode() for i in range(n)]
        values = np.zeros(n, dtype=m.value_type.dtype)
        values["count"], values["bytes"] = np.arange(n), np.arange(n) * 512
        m.update_batch(keys, values)
        frame = m.to_frame().sort_values("pid").reset_index(drop=True)
        assert list(frame.columns) == ["pid", "comm", "count", "bytes"]
        assert (frame["pid"].to_numpy() == np.arange(n)).all()
        assert frame["comm"].tolist()[:8] == [f"task{i % 7}" for i in range(8)]
        assert (frame["bytes"].to_numpy() == np.arange(n) * 512).all()
        # clear=True reads and empties the map in the same batch walk.
        assert len(m.to_frame(clear=True)) == n
        assert len(m) == 0


BPF_F_ZERO_SEED = 1 << 6


def _rol32(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def _kernel_hash_u32(key: int) -> int:
    """The kernel's jhash2() of one u32 key with seed 0 (include/linux/jhash.h), as a hash map
    made with BPF_F_ZERO_SEED hashes it."""
    a = b = c = 0xDEADBEEF + (1 << 2)
    a = (a + key) & 0xFFFFFFFF
    c = ((c ^ b) - _rol32(b, 14)) & 0xFFFFFFFF
    a = ((a ^ c) - _rol32(c, 11)) & 0xFFFFFFFF
    b = ((b ^ a) - _rol32(a, 25)) & 0xFFFFFFFF
    c = ((c ^ b) - _rol32(b, 16)) & 0xFFFFFFFF
    a = ((a ^ c) - _rol32(c, 4)) & 0xFFFFFFFF
    b = ((b ^ a) - _rol32(a, 14)) & 0xFFFFFFFF
    c = ((c ^ b) - _rol32(b, 24)) & 0xFFFFFFFF
    return c


def test_bucket_larger_than_the_buffer_grows_it_on_enospc() -> None:
    # With a zero hash seed the buckets are known: three keys share bucket 0, the first one a
    # batch walk visits, so a buffer with room for one entry must meet ENOSPC there.
    buckets = 64
    in_bucket_0 = [k for k in range(10_000) if _kernel_hash_u32(k) & (buckets - 1) == 0][:3]
    elsewhere = [k for k in range(10_000) if _kernel_hash_u32(k) & (buckets - 1) != 0][:61]
    keys_in = np.array(in_bucket_0 + elsewhere, dtype=np.uint32)
    with _new(MapType.HASH, ct.c_uint32, ct.c_uint64, buckets, BPF_F_ZERO_SEED) as m:
        m.update_batch(keys_in, keys_in.astype(np.uint64))
        # The raw syscall with room for one entry hits ENOSPC on the first call...
        keys, values, token = np.zeros(1, np.uint32), np.zeros(1, np.uint64), np.zeros(8, np.uint8)
        with pytest.raises(OSError) as caught:
            bpf.map_lookup_batch(m.fd, None, token, keys, values, 1)
        assert caught.value.errno == errno.ENOSPC
        # ...and a snapshot that starts that small grows its buffers and reads everything.
        snap = m.snapshot(batch_size=1)
        assert snap.batched and snap.grown >= 1
        assert sorted(snap.keys.tolist()) == sorted(keys_in.tolist())
        assert (snap.values == snap.keys).all()


def test_percpu_values_use_8_byte_slots_per_cpu() -> None:
    class Odd(ct.Structure):  # 12 bytes: each CPU's slot is padded to 16
        _fields_ = [("a", ct.c_uint32), ("b", ct.c_uint32), ("c", ct.c_uint32)]

    cpus = possible_cpus()
    with _new(MapType.PERCPU_ARRAY, ct.c_uint32, Odd, 4) as m:
        assert isinstance(m, PerCpuArrayMap)
        m[2] = [(i + 1, 10 * (i + 1), 100 * (i + 1)) for i in range(len(cpus))]
        # The kernel's own copy, read without bpfnb: slots of 16 bytes, one per CPU.
        raw = np.zeros(len(cpus) * 4, dtype=np.uint32)
        assert bpf.map_lookup(m.fd, np.array([2], np.uint32), raw)
        assert raw.reshape(len(cpus), 4)[:, :3].tolist() == [
            [i + 1, 10 * (i + 1), 100 * (i + 1)] for i in range(len(cpus))
        ]
        assert [v.b for v in m[2]] == [10 * (i + 1) for i in range(len(cpus))]
        frame = m.to_frame()
        row = frame[frame["key"] == 2].iloc[0]
        assert row["c"] == sum(100 * (i + 1) for i in range(len(cpus)))
        assert [row[f"c.cpu{c}"] for c in cpus] == [100 * (i + 1) for i in range(len(cpus))]
        m.clear()
        assert m.to_frame(per_cpu=False)["a"].sum() == 0


def test_mapping_protocol_on_a_hash() -> None:
    with _new(MapType.HASH, Key, Value, 16, BPF_F_NO_PREALLOC) as m:
        m[(1, "bash")] = (3, 4)
        m[{"pid": 2, "comm": "sh"}] = {"bytes": 9}
        m[Key(3, b"zsh")] = Value(1, 1)
        assert m[1, "bash"] == (3, 4)
        assert m[{"pid": 2, "comm": "sh"}].bytes == 9
        assert sorted(k.pid for k in m) == [1, 2, 3]
        assert dict(m.items())[(3, "zsh")] == (1, 1)
        del m[(3, "zsh")]
        with pytest.raises(KeyError):
            m[(3, "zsh")]
        with pytest.raises(KeyError):
            del m[(3, "zsh")]
        with pytest.raises(MapError):
            m[(1, "bash")] = (1, 2, 3)
        m.clear()
        assert len(m) == 0 and m.to_frame().empty


def test_full_hash_raises_map_error() -> None:
    with _new(MapType.HASH, ct.c_uint32, ct.c_uint32, 2) as m:
        m[1], m[2] = 1, 2
        with pytest.raises(MapError, match="full"):
            m[3] = 3


def test_key_by_key_fallback_when_the_kernel_has_no_batch_ops(monkeypatch) -> None:
    from bpfnb.maps import snapshot

    def no_batch(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EINVAL, "BPF_MAP_LOOKUP_BATCH unknown before Linux 5.6")

    with _new(MapType.HASH, Key, Value, 64) as m:
        m.update_batch([(i, f"t{i}") for i in range(50)], [(i, 2 * i) for i in range(50)])
        batched = m.to_frame().sort_values("pid").reset_index(drop=True)
        monkeypatch.setattr(snapshot.bpf, "map_lookup_batch", no_batch)
        assert not m.snapshot().batched
        walked = m.to_frame(clear=True).sort_values("pid").reset_index(drop=True)
        assert walked.equals(batched) and len(walked) == 50
        assert len(m) == 0


def test_stack_trace_maps_have_no_batch_ops_and_still_read(bcc_ok: None) -> None:
    from bpfnb.bcc import from_bcc_table, import_bcc

    program = import_bcc().BPF(
        text="BPF_STACK_TRACE(stacks, 16);"
        "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { stacks.get_stackid(args, 0); return 0; }"
    )
    try:
        os.getppid()
        m = from_bcc_table(program[b"stacks"])
        snap = m.snapshot()
        assert not snap.batched and len(snap) >= 1
        assert len(m.to_frame()) == len(snap)
    finally:
        program.cleanup()


def test_close_is_idempotent_and_only_closes_an_owned_fd() -> None:
    fd = bpf.map_create(MapType.ARRAY, 4, 8, 1)
    borrowed = open_map(
        fd.fileno(),
        name="b",
        map_type=MapType.ARRAY,
        key=layout_of(ct.c_uint32),
        value=layout_of(ct.c_uint64),
        max_entries=1,
        owns_fd=False,
    )
    borrowed.close()
    borrowed.close()
    with pytest.raises(MapError, match="closed"):
        borrowed[0]
    assert bpf.map_info(fd.fileno()).max_entries == 1  # the owner's fd is still open
    owned = open_map(
        fd,
        name="o",
        map_type=MapType.ARRAY,
        key=layout_of(ct.c_uint32),
        value=layout_of(ct.c_uint64),
        max_entries=1,
    )
    owned[0] = 5
    assert owned[0] == 5
    owned.close()
    assert fd.closed and owned.closed


def test_from_bcc_reads_percpu_values_bcc_cannot(bcc_ok: None) -> None:
    from bpfnb.bcc import from_bcc, import_bcc

    program = import_bcc().BPF(
        text="struct v_t { u32 a; u32 b; u32 c; };"
        "BPF_PERCPU_ARRAY(odd, struct v_t, 4); BPF_HASH(plain, u32, u64);"
        "int f(void *ctx) { return 0; }"
    )
    try:
        with pytest.raises(IndexError):  # bcc's own table refuses a 12-byte per-CPU value
            program[b"odd"]
        m = from_bcc(program, "odd")
        assert isinstance(m, PerCpuArrayMap) and m.value_type_name == "struct v_t"
        m[1] = (1, 2, 3)
        assert m.to_frame(per_cpu=False).iloc[1].tolist() == [
            1,
            *(n * len(possible_cpus()) for n in (1, 2, 3)),
        ]
        plain = from_bcc(program, "plain")
        plain[7] = 8
        assert program[b"plain"][ct.c_uint32(7)].value == 8
        with pytest.raises(KeyError):
            from_bcc(program, "missing")
    finally:
        program.cleanup()
