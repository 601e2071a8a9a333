/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bpfnb: count every event a program fails to submit, per map and per CPU.
 *
 * Include it after <bpf/bpf_helpers.h>. bpf_perf_event_output(), bpf_ringbuf_output() and
 * bpf_ringbuf_reserve() then count each failure (a negative return, or NULL) in the hidden map
 * bpfnb_drops, keyed by the map argument as written ("&events"). bpfnb's EventStream reads
 * those counts into stats.lost (perf buffers) and stats.dropped (ring buffers), so that
 * received + lost is every event produced. %%bpf --elf cells include this header for you.
 */
#ifndef __BPFNB_COUNTED_H
#define __BPFNB_COUNTED_H

#include <bpf/bpf_helpers.h>

struct bpfnb_drop_key {
	char map[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, struct bpfnb_drop_key);
	__type(value, __u64);
} bpfnb_drops SEC(".maps");

static __always_inline void bpfnb_count_drop(const struct bpfnb_drop_key *key)
{
	__u64 zero = 0, *count;

	count = bpf_map_lookup_elem(&bpfnb_drops, key);
	if (!count) {
		bpf_map_update_elem(&bpfnb_drops, key, &zero, BPF_NOEXIST);
		count = bpf_map_lookup_elem(&bpfnb_drops, key);
	}
	if (count)
		__sync_fetch_and_add(count, 1);
}

/* Count one event that could not be submitted to MAP. */
#define BPFNB_COUNT_DROP(MAP)                                                    \
	({                                                                       \
		struct bpfnb_drop_key __bpfnb_key = {.map = #MAP};               \
		bpfnb_count_drop(&__bpfnb_key);                                  \
	})

/* Inside these macros the helper's own name is not expanded again: it calls the helper. */
#define bpf_perf_event_output(ctx, map, flags, data, size)                       \
	({                                                                       \
		long __bpfnb_r = bpf_perf_event_output(ctx, map, flags, data, size); \
		if (__bpfnb_r < 0)                                               \
			BPFNB_COUNT_DROP(map);                                   \
		__bpfnb_r;                                                       \
	})

#define bpf_ringbuf_output(map, data, size, flags)                               \
	({                                                                       \
		long __bpfnb_r = bpf_ringbuf_output(map, data, size, flags);     \
		if (__bpfnb_r < 0)                                               \
			BPFNB_COUNT_DROP(map);                                   \
		__bpfnb_r;                                                       \
	})

#define bpf_ringbuf_reserve(map, size, flags)                                    \
	({                                                                       \
		void *__bpfnb_p = bpf_ringbuf_reserve(map, size, flags);         \
		if (!__bpfnb_p)                                                  \
			BPFNB_COUNT_DROP(map);                                   \
		__bpfnb_p;                                                       \
	})

#endif /* __BPFNB_COUNTED_H */
