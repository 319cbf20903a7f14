"""Run every benchmark script in turn, then rebuild docs/benchmarks.md.

python bench/run_all.py           # full runs
python bench/run_all.py --quick   # the quick variant of every script that has one
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    extra = sys.argv[1:]
    status = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name} {' '.join(extra)}", flush=True)
        code = subprocess.call([sys.executable, script.name, *extra], cwd=HERE)
        if code != 0:
            print(f"!! {script.name} exited with {code}", flush=True)
            status = code
    subprocess.call([sys.executable, "make_report.py"], cwd=HERE)
    return status


if __name__ == "__main__":
    sys.exit(main())
