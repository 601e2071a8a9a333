"""How long ``import bpfnb`` takes, against ``import bcc`` (the bindings bpfnb replaces).

Each import runs in a fresh interpreter with ``python -X importtime``; the figure is the
cumulative time the interpreter reports for the top-level module (median of N runs). pandas,
matplotlib and ipywidgets must not be loaded by ``import bpfnb``: they load on first use.
Run: ``.venv/bin/python benchmarks/import_time.py [runs]``.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys

from bpfnb.bcc import find_bcc_dir

HEAVY = ("pandas", "matplotlib", "ipywidgets", "IPython")


def import_micros(statement: str, module: str, env_path: str = "") -> int:
    """The cumulative import time of ``module`` (µs) when a fresh interpreter runs ``statement``."""
    code = f"import sys; sys.path.insert(0, {env_path!r})\n" if env_path else ""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code + statement],
        capture_output=True,
        text=True,
        check=True,
    )
    pattern = re.compile(rf"^import time:\s+\d+ \|\s+(\d+) \| {re.escape(module)}$", re.M)
    match = pattern.search(done.stderr)
    assert match is not None, done.stderr[-500:]
    return int(match.group(1))


def heavy_modules_loaded() -> list[str]:
    check = (
        "import sys, bpfnb; print(' '.join(m for m in "
        f"{HEAVY!r} if type(sys.modules.get(m)).__name__ == 'module'))"
    )
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    return out.stdout.split()


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    bcc_dir = find_bcc_dir()
    ours = statistics.median(import_micros("import bpfnb", "bpfnb") for _ in range(runs))
    print(f"import time, median of {runs} fresh interpreters")
    print(f"  import bpfnb   {ours / 1000:8.1f} ms")
    if bcc_dir is not None:
        parent = bcc_dir.rsplit("/", 1)[0]
        theirs = statistics.median(
            import_micros("import bcc", "bcc", env_path=parent) for _ in range(runs)
        )
        print(f"  import bcc     {theirs / 1000:8.1f} ms")
        print(f"  bpfnb / bcc    {ours / theirs:8.2f}x")
    loaded = heavy_modules_loaded()
    print(f"  loaded by import bpfnb: {', '.join(loaded) or 'none of ' + ', '.join(HEAVY)}")


if __name__ == "__main__":
    main()
