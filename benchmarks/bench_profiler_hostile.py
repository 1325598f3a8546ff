"""Time and peak memory of the profiler on the hostile graphs of the test corpus, one process each.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_profiler_hostile.py``. Each case of
``tests/hardening/hostile_corpus.py:profiler_cases`` (plus the 250k-symbolic-dims graph, too
big to commit) is profiled in a fresh Python process; prints the outcome, the seconds spent in
``profile_graph`` and the process's peak RSS before and after (ru_maxrss), so the growth is
what profiling that graph cost.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, logging, resource, sys, time
logging.disable(logging.WARNING)
sys.path.insert(0, "tests/hardening")
import hostile_corpus as hc
from joulecast.graph import profile_graph
name = sys.argv[1]
cases = {c.name: c.graph for c in hc.profiler_cases()}
cases["symbolic_dims_250k"] = hc._symbolic_dims(250_000)
graph = cases[name]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    profile = profile_graph(graph)
    outcome = f"OK, {len(profile.warnings)} warning(s), {sum(map(len, profile.warnings))} chars"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {str(exc)[:70]}"
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"bytes": len(graph), "s": seconds, "before_mb": before / 1024,
                  "after_mb": after / 1024, "outcome": outcome}))
"""


def main() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "hardening"))
    import hostile_corpus

    names = [c.name for c in hostile_corpus.profiler_cases()] + ["symbolic_dims_250k"]
    print(f"{'case':<30}{'bytes':>9}{'seconds':>9}{'peak MB':>9}{'growth MB':>10}  outcome")
    for name in names:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{name:<30}{r['bytes']:>9}{r['s']:>9.3f}{r['after_mb']:>9.0f}"
            f"{r['after_mb'] - r['before_mb']:>10.1f}  {r['outcome']}"
        )


if __name__ == "__main__":
    main()
