"""Drop, or count, the packets an interface receives, by IP protocol, with XDP (gobpf's
xdp_drop example).

    sudo python examples/bcc/xdp_drop.py IFNAME [--protocol udp] [--mode auto]
                                                [--duration SECONDS]

Packets of ``--protocol`` are dropped (all IPv4 protocols are counted). Without it nothing is
dropped. Ctrl-C stops and detaches.
"""

from __future__ import annotations

import argparse
import time

import bpfnb.bcc

PROGRAM = r"""
#include <uapi/linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>

BPF_ARRAY(protocols, u64, 256);

int xdp_drop(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(*eth);
    if ((void *)(ip + 1) > end || eth->h_proto != htons(ETH_P_IP))
        return XDP_PASS;
    u32 key = ip->protocol;
    u64 *count = protocols.lookup(&key);
    if (count)
        __sync_fetch_and_add(count, 1);
    return key == DROP_PROTOCOL ? XDP_DROP : XDP_PASS;
}
"""
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "none": 256}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("interface")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="none")
    parser.add_argument("--mode", default="auto", help="auto, skb, native or offload")
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    args = parser.parse_args()
    defines = {"DROP_PROTOCOL": PROTOCOLS[args.protocol]}
    with bpfnb.bcc.compile(PROGRAM, defines=defines, name="xdp_drop", attach=False) as obj:
        link = obj.attach_xdp("xdp_drop", args.interface, args.mode)
        print(f"XDP on {link.target}: dropping {args.protocol}", flush=True)
        names = {number: name for name, number in PROTOCOLS.items()}
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(1)
                counts = {
                    names.get(proto, str(proto)): int(count)
                    for proto, count in obj.maps["protocols"].items()
                    if count
                }
                print(counts, flush=True)
        except KeyboardInterrupt:
            pass
    print("detached")


if __name__ == "__main__":
    main()
