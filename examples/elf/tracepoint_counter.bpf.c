/* Count openat() calls per process name, from the syscalls:sys_enter_openat tracepoint. */
#include <bpf/bpf_helpers.h>

struct comm {
	char name[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct comm);
	__type(value, __u64);
} opens SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int count_openat(void *ctx)
{
	struct comm key = {};
	__u64 one = 1, *count;

	bpf_get_current_comm(&key.name, sizeof(key.name));
	count = bpf_map_lookup_elem(&opens, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&opens, &key, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
