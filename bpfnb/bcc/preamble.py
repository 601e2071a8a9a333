"""C text that bpfnb prepends to every ``%%bpf`` cell before the user's code.

Whatever is defined here is available in every cell. The compile step follows it with a
``#line 1`` directive, so diagnostics keep the cell's own line numbers.

Counting events that could not be submitted (read by :class:`bpfnb.EventStream`)::

    // ring buffer: output ...
    int err = events.ringbuf_output(&event, sizeof(event), 0);
    BPFNB_CHECK_SUBMIT(events, err);
    // ... or reserve
    struct event_t *e = events.ringbuf_reserve(sizeof(*e));
    if (!e) { BPFNB_COUNT_DROP(events); return 0; }
    // perf buffer
    int err = events.perf_submit(ctx, &event, sizeof(event));
    BPFNB_CHECK_SUBMIT(events, err);

bcc forbids map method calls inside macros (even in their arguments), so the submit call stays
in the cell's own code, which also lets bcc learn the event type, and only its result is passed.

Counts are per CPU, in the hidden map ``bpfnb_drops`` keyed by the map's name. A stream over a
ring buffer adds them to ``stats.dropped``; over a perf buffer to ``stats.lost``. A perf submit
that fails with ``-ENOSPC`` (ring full) is not counted here: the kernel counts that one itself
and reports it as ``PERF_RECORD_LOST``.
"""

from __future__ import annotations

import re

from bpfnb.events.drops import DROP_COUNTER_MAP, DROP_KEY_SIZE

__all__ = ["PREAMBLE", "PREAMBLE_MAPS", "counted_maps"]

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
/* Count a failed submit (RET < 0) to MAP, except perf's -ENOSPC, which the kernel counts. */
#define BPFNB_CHECK_SUBMIT(MAP, RET) \\
    ({{ long bpfnb_ret_ = (RET); \\
       if (bpfnb_ret_ < 0 && bpfnb_ret_ != -28) BPFNB_COUNT_DROP(MAP); \\
       bpfnb_ret_; }})
"""

# Maps the preamble declares: bpfnb uses them itself and hides them from ``obj.maps``.
PREAMBLE_MAPS: frozenset[str] = frozenset({DROP_COUNTER_MAP})


def counted_maps(source: str) -> frozenset[str]:
    """The event maps whose failed submits the cell's code counts with bpfnb's macros."""
    return frozenset(re.findall(r"BPFNB_(?:CHECK_SUBMIT|COUNT_DROP)\s*\(\s*(\w+)", source))
