"""``python -m bpfnb doctor [--fix] [--json]``."""

from __future__ import annotations

import sys

from bpfnb.doctor import main as doctor_main


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "doctor":
        print("usage: python -m bpfnb doctor [--fix] [--json]", file=sys.stderr)
        return 2
    return doctor_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
