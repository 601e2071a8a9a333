"""C text that bpfnb prepends to every ``%%bpf`` cell before the user's code.

Whatever is defined here is available in every cell. The compile step follows it with a
``#line 1`` directive, so diagnostics keep the cell's own line numbers.

It declares the hidden map ``bpfnb_drops`` (per CPU, keyed by an event map's name) and
``BPFNB_COUNT_DROP(MAP)``, which adds one to MAP's count. The cell's code never calls it: the
submit calls are wrapped before compiling (:mod:`bpfnb.bcc.submits`), so every failed
``perf_submit``, ``perf_submit_skb``, ``ringbuf_output`` and ``ringbuf_reserve`` is counted, and
:class:`bpfnb.EventStream` reports them as ``stats.lost`` (perf) or ``stats.dropped`` (ring).
bcc forbids map method calls inside macros, so the macro only builds the key and calls a
function.
"""

from __future__ import annotations

from bpfnb.events.drops import DROP_COUNTER_MAP, DROP_KEY_SIZE

__all__ = ["PREAMBLE", "PREAMBLE_MAPS"]

PREAMBLE = f"""\
struct bpfnb_drop_key {{
    char map[{DROP_KEY_SIZE}];
}};
BPF_PERCPU_HASH({DROP_COUNTER_MAP}, struct bpfnb_drop_key, u64, 256);
static __always_inline void bpfnb_count_drop_(struct bpfnb_drop_key *key) {{
    u64 zero = 0;
    u64 *count = {DROP_COUNTER_MAP}.lookup_or_try_init(key, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
}}
/* Count one event that could not be submitted to MAP. */
#define BPFNB_COUNT_DROP(MAP) \\
    ({{ struct bpfnb_drop_key bpfnb_key_ = {{.map = #MAP}}; bpfnb_count_drop_(&bpfnb_key_); }})
"""

# Maps the preamble declares: bpfnb uses them itself and hides them from ``obj.maps``.
PREAMBLE_MAPS: frozenset[str] = frozenset({DROP_COUNTER_MAP})
