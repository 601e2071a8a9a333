"""Count IPv4 packets by protocol on an interface with an ELF socket filter (gobpf's
socket filter example).

    sudo python examples/elf/socket_filter.py [--interface lo] [--duration SECONDS]

The filter runs on a raw packet socket bound to the interface; every second the counts per
protocol are printed. Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

from bpfnb.elf import load_source

SOURCE = Path(__file__).with_suffix(".bpf.c")
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface", default="lo")
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    args = parser.parse_args()
    with load_source(SOURCE.read_text(), name="socket_filter") as obj:
        link = obj.attach_socket_filter("count_protocols", args.interface)
        print(f"counting packets on {link.target}")
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while deadline is None or time.monotonic() < deadline:
                if args.interface == "lo":
                    # Something to see on an idle machine: one datagram to ourselves.
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                        s.sendto(b"ping", ("127.0.0.1", 9))
                time.sleep(1)
                counts = {
                    PROTOCOLS.get(proto, str(proto)): int(count)
                    for proto, count in obj.maps["protocols"].items()
                    if count
                }
                print(counts, flush=True)
        except KeyboardInterrupt:
            pass
    print("detached")


if __name__ == "__main__":
    main()
