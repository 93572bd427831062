"""Parse throughput and peak memory of the Kineto normalizer, beside HolisticTraceAnalysis's parser.

Usage:
    python benchmarks/normalize.py                      # profile a model for many iterations, then compare
    python benchmarks/normalize.py --trace BIG.json     # compare on an existing trace
    python benchmarks/normalize.py --trace BIG.json --compare-to ../old-checkout   # also an older ngbench

Each parser runs ``--repeat`` times (default 3) in turns; the table gives the median time and the largest
peak. Two floors, reading the whole file and decoding it with msgspec alone (no attribution): ``floor
(untyped)`` decodes every event into Python dicts; ``floor (typed)`` decodes only the fields a normalizer
reads (name, cat, ph, ts, dur, pid, tid; args kept raw) into typed structs: what any parser of this file pays
at least. Each figure is also given as a multiple of the typed floor.

Targets: >= 5x the speed of holistictraceanalysis's parser on the same file; normalize within 2x of the typed
floor; peak memory <= 1.5x the (uncompressed) file size. Each parser runs in its own fresh process; peak
memory is the growth of that process's maximum RSS over its baseline after imports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
which, path, repo = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, repo)
if which.startswith("ngbench"):
    from ngbench.traces import kineto
    run = lambda: kineto.normalize(path)
elif which.startswith("floor"):
    import gzip, msgspec
    class Event(msgspec.Struct, gc=False):
        name: str = ""
        cat: str | None = None
        ph: str = ""
        ts: float = 0.0
        dur: float = 0.0
        pid: int | str | None = None
        tid: int | str | None = None
        args: msgspec.Raw = msgspec.Raw(b"null")
    class Trace(msgspec.Struct):
        traceEvents: list[Event]
    typed = msgspec.json.Decoder(Trace)
    def run():
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        if which == "floor (typed)":
            return typed.decode(raw).traceEvents
        return msgspec.json.decode(raw)["traceEvents"]
else:
    from hta.common.trace_parser import parse_trace_dataframe
    from hta.configs.parser_config import ParserBackend, ParserConfig
    cfg = ParserConfig()
    cfg.set_parser_backend(getattr(ParserBackend, which.split(":", 1)[1]))
    run = lambda: parse_trace_dataframe(path, cfg)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024  # MiB
# a forked child inherits its parent's peak RSS: reset the high-water mark after imports (Linux >= 4.0)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS:")
t0 = time.perf_counter()
out = run()
elapsed = time.perf_counter() - t0
peak = status("VmHWM:")
rows = len(out[0]) if which.startswith("ngbench") else len(out) if which.startswith("floor") else len(out[1])
print(json.dumps({{"seconds": elapsed, "peak_growth_mb": peak - base, "rows": rows}}))
"""


def make_trace(path: Path, iterations: int, layers: int) -> None:
    """Profile a real GPT-2 stack (narrow width, so it runs fast) for many iterations."""
    sys.path.insert(0, str(REPO))
    import torch

    from ngbench import inputs, registry
    from ngbench.backends import torch_eager

    spec = registry.load()["gpt2"]
    small = registry.ModelSpec(**{**spec.__dict__, "config": {**spec.config, "n_embd": 64, "n_head": 2}})
    model, _ = registry.build(small, layers=layers, attn_implementation="eager")
    model.config.use_cache = False
    batch, _ = inputs.text_batch(spec, 1, 64)
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(torch.get_num_threads())
    with torch.inference_mode(), torch_eager.module_scopes(model), profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iterations):
            model(**batch)
            prof.step()
    prof.export_chrome_trace(str(path))


def measure(which: str, trace: Path, repo: Path = REPO) -> dict:
    code = CHILD.format()
    res = subprocess.run([sys.executable, "-c", code, which, str(trace), str(repo)], capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace", type=Path, help="an existing uncompressed Kineto trace")
    ap.add_argument("--iterations", type=int, default=300, help="profiled iterations of the generated trace")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hta-backends", default="JSON,IJSON_BATCH_AND_COMPRESS")
    ap.add_argument("--repeat", type=int, default=3, help="fresh-process runs per parser, taken in turns (median)")
    ap.add_argument(
        "--compare-to",
        type=Path,
        help="another checkout of this repository (e.g. a git worktree of an "
        "older commit): its normalizer is measured in the same run",
    )
    args = ap.parse_args()

    trace = args.trace
    tmpdir = None
    if trace is None:
        tmpdir = tempfile.mkdtemp(prefix="ngb-bench-")
        trace = Path(tmpdir) / "big_trace.json"
        print(f"profiling GPT-2 ({args.layers} layers, width 64) for {args.iterations} iterations -> {trace}")
        make_trace(trace, args.iterations, args.layers)
    size_mb = trace.stat().st_size / 2**20
    with open(trace, "rb") as f:
        events = sum(1 for _ in __import__("ijson").items(f, "traceEvents.item"))
    print(f"trace: {trace} ({size_mb:.1f} MiB, {events} events)\n")
    print(f"{'parser':<42}{'seconds':>9}{'MiB/s':>9}{'events/s':>12}{'peak MiB':>10}{'x file':>8}{'x typed':>9}")
    results = {}
    runs = [("floor (typed)", REPO), ("floor (untyped)", REPO), ("ngbench", REPO)]
    if args.compare_to:
        runs.append((f"ngbench@{args.compare_to}", args.compare_to.resolve()))
    runs += [(f"hta:{b}", REPO) for b in args.hta_backends.split(",")]
    samples: dict[str, list[dict]] = {which: [] for which, _ in runs}
    for _ in range(args.repeat):  # in turns, so a slow spell of a shared machine hits every parser alike
        for which, repo in runs:
            samples[which].append(measure(which, trace, repo))
    for which, _ in runs:
        ok = [r for r in samples[which] if "error" not in r]
        if not ok:
            results[which] = samples[which][0]
            print(f"{which:<42}failed: {samples[which][0]['error']}")
            continue
        seconds = sorted(r["seconds"] for r in ok)
        r = {"seconds": seconds[len(seconds) // 2], "peak_growth_mb": max(x["peak_growth_mb"] for x in ok)}
        results[which] = r
        s = r["seconds"]
        floor = results.get("floor (typed)", {}).get("seconds")
        print(
            f"{which:<42}{s:>9.2f}{size_mb / s:>9.1f}{events / s:>12.0f}{r['peak_growth_mb']:>10.0f}"
            f"{r['peak_growth_mb'] / size_mb:>8.2f}{s / floor if floor else float('nan'):>9.2f}"
        )
    ours = results["ngbench"].get("seconds")
    for which, r in results.items():
        if which != "ngbench" and not which.startswith("floor") and "seconds" in r and ours:
            speedup = r["seconds"] / ours
            print(f"\nngbench normalize (parse + attribute + classify) vs {which}: {speedup:.2f}x")
    if tmpdir:
        os.remove(trace)
        os.rmdir(tmpdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
