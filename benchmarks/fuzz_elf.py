"""Fuzz the ELF reader: 10,000+ mutated fixture objects; only ElfError may escape.

    .venv/bin/python benchmarks/fuzz_elf.py [--cases 10000] [--seed N]

Prints how the cases ended (read fine, or ElfError by section), the reading rate and the slowest
case. There is no bcc baseline for this one: bcc does not read ELF objects.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.unit.test_elf_fuzz import load_fixtures, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0, help="0: the fixed, reproducible sequence")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:

        def build(name: str, *flags: str) -> Path:
            out = Path(tmp) / f"{name}{len(list(Path(tmp).iterdir()))}.o"
            source = ROOT / "tests" / "fixtures" / f"{name}.c"
            cmd = ["clang", "-O2", "-g", "-target", "bpf", "-c", str(source), "-o", str(out)]
            subprocess.run([*cmd, "-I", str(source.parent), *flags], check=True)
            return out

        objects = load_fixtures(build)

    outcomes: dict[str, int] = {}
    start = time.perf_counter()
    slowest = run(objects, args.cases, outcomes, seed=args.seed)
    elapsed = time.perf_counter() - start
    total = sum(outcomes.values())
    print(f"{total} mutated objects in {elapsed:.1f} s ({total / elapsed:.0f}/s, slowest "
          f"{slowest * 1000:.0f} ms); every one read cleanly or raised an ElfError naming a "
          "section and an offset")  # fmt: skip
    for outcome, count in sorted(outcomes.items(), key=lambda kv: -kv[1]):
        print(f"  {count:6}  {outcome}")


if __name__ == "__main__":
    main()
