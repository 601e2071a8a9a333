/* Count the packets on an interface by IP protocol (a socket filter on a raw packet socket).
 * Returning 0 keeps no packet for the socket: the program only counts. */
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} protocols SEC(".maps");

SEC("socket")
int count_protocols(void *skb)
{
	__u8 proto = 0;
	__u16 ethertype = 0;
	__u32 key;
	__u64 *count;

	/* Ethernet type at offset 12; IPv4 protocol at 14 + 9 (network byte order). */
	if (bpf_skb_load_bytes(skb, 12, &ethertype, sizeof(ethertype)) < 0)
		return 0;
	if (ethertype != __builtin_bswap16(0x0800))
		return 0;
	if (bpf_skb_load_bytes(skb, 23, &proto, sizeof(proto)) < 0)
		return 0;
	key = proto;
	count = bpf_map_lookup_elem(&protocols, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
