"""What the horizon's work columns cost: on the study's time (the shapes pass records PyTorch's execution
trace beside its Kineto trace) and on normalization (the execution trace is read and joined).

Usage:
    python benchmarks/horizon_cost.py [--models gpt2 swin-t detr segformer] [--repeat 3]
    python benchmarks/horizon_cost.py --runs results/traces/cpu/torch   # also time normalizing those runs

Per model, in turns, ``--repeat`` times: the one-iteration shapes pass as the study runs it (profiler with
``record_shapes``, module scopes), without and with the execution trace observer (+ its gzip); the table
gives medians and the run's unprofiled latency for scale. With ``--runs``: each run directory normalized
with its execution trace (work from ``tensors``) and without it (work from the recorded shapes through
PyTorch's meta device) and, as the floor, without any work (the shapes trace's arguments dropped).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def shapes_pass(model, batch, exec_trace: bool, trace_dir: Path) -> float:
    from torch.profiler import ProfilerActivity, profile

    from ngbench.backends import torch_eager

    t0 = time.perf_counter()
    observer = torch_eager._exec_trace_observer(trace_dir) if exec_trace else None
    with (
        torch_eager.module_scopes(model),
        profile(activities=[ProfilerActivity.CPU], record_shapes=True, execution_trace_observer=observer) as prof,
    ):
        model(**batch)
    prof.export_chrome_trace(str(trace_dir / "shapes.json.gz"))
    if exec_trace:
        torch_eager._compress_exec_trace(trace_dir)
    return time.perf_counter() - t0


def study_cost(models: list[str], repeat: int) -> None:
    import torch

    from ngbench import inputs, registry

    print("| model | unprofiled latency ms | shapes pass s | + execution trace s | added s | exec_trace.json.gz MB |")
    print("|---|---|---|---|---|---|")
    for name in models:
        spec = registry.load()[name]
        model, _ = registry.build(spec, attn_implementation="eager", dtype="float32")
        model.eval()
        batch = inputs.make_batch(spec, 1, seq_len=spec.seq_len)[0]
        with torch.inference_mode():
            model(**batch)
            t0 = time.perf_counter()
            model(**batch)
            latency = (time.perf_counter() - t0) * 1e3
            plain, with_et, size = [], [], 0.0
            for _ in range(repeat):
                with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
                    plain.append(shapes_pass(model, batch, False, Path(a)))
                    with_et.append(shapes_pass(model, batch, True, Path(b)))
                    size = (Path(b) / "exec_trace.json.gz").stat().st_size / 1e6
        p, e = statistics.median(plain), statistics.median(with_et)
        print(f"| {name} | {latency:.0f} | {p:.2f} | {e:.2f} | {e - p:+.2f} | {size:.1f} |")


def normalize_cost(runs: Path, repeat: int) -> None:
    from ngbench.normalize import RunFiles, kineto_run

    print("\n| run | normalize, work from tensors s | from shapes (meta) s | no work s |")
    print("|---|---|---|---|")
    for run in sorted(p for p in runs.glob("*/bs*") if (p / "exec_trace.json.gz").is_file()):
        labels = dict(platform="cpu", backend="torch", model=run.parent.name, batch_size=1, seq_len=None)
        with tempfile.TemporaryDirectory() as tmp:
            no_et = Path(tmp) / "no_et"
            shutil.copytree(run, no_et, ignore=shutil.ignore_patterns("exec_trace.json.gz"))
            no_shapes = Path(tmp) / "no_shapes"
            shutil.copytree(run, no_shapes, ignore=shutil.ignore_patterns("exec_trace.json.gz", "shapes.json.gz"))
            times = {"tensors": [], "shapes": [], "none": []}
            for _ in range(repeat):
                for key, where in (("tensors", run), ("shapes", no_et), ("none", no_shapes)):
                    from ngbench.traces import torch_work

                    torch_work.from_args.cache_clear()
                    t0 = time.perf_counter()
                    kineto_run(RunFiles.of_run(where, "torch"), labels)
                    times[key].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"| {run.parent.name}/{run.name} | {med['tensors']:.2f} | {med['shapes']:.2f} | {med['none']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=["gpt2", "swin-t", "detr", "segformer"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=Path, help="a results/traces/<platform>/torch folder to normalize")
    args = parser.parse_args()
    if args.models:
        study_cost(args.models, args.repeat)
    if args.runs:
        normalize_cost(args.runs, args.repeat)


if __name__ == "__main__":
    main()
