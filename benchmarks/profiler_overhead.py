"""Profiler overhead per model: unprofiled latency, the plain profiler, and the profiler with module scoping.

Usage:
    python benchmarks/profiler_overhead.py [--models swin-t vit-b gpt2] [--batch-size 1] [--iterations 10]

Target: module scoping adds < 10% on top of the plain profiler. Each configuration
runs the same model object on the same real input batch; medians over the measured iterations. Each model
runs in its own process: allocator state left by an earlier model skewed later ones (GPT-2's scoped run
went from 279 ms alone to 903 ms after Swin-T and ViT-B in the same process).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["swin-t", "vit-b", "gpt2"])
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-header", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if len(args.models) > 1:  # one fresh process per model
        import subprocess

        for i, name in enumerate(args.models):
            cmd = [
                sys.executable,
                __file__,
                "--models",
                name,
                "--batch-size",
                str(args.batch_size),
                "--iterations",
                str(args.iterations),
            ] + (["--threads", str(args.threads)] if args.threads else [])
            subprocess.run(cmd + (["--no-header"] if i else []), check=True, stderr=subprocess.DEVNULL)
        return 0

    import torch

    from ngbench import inputs, registry
    from ngbench.backends import torch_eager

    specs = registry.load()
    threads = args.threads or torch.get_num_threads()
    header = ("model", "unprofiled ms", "profiler ms", "+scopes ms", "prof/unprof", "scopes/prof")
    if not args.no_header:
        print(f"threads {threads}, batch {args.batch_size}, {args.iterations} measured iterations per configuration\n")
        print(f"{header[0]:<10}" + "".join(f"{h:>14}" for h in header[1:]), flush=True)
    for name in args.models:
        spec = specs[name]
        model, _ = registry.build(spec, attn_implementation="eager" if spec.source == "transformers" else None)
        if spec.source == "transformers":
            model.config.use_cache = False
        batch, _ = inputs.make_batch(spec, args.batch_size, seq_len=spec.seq_len)
        results = {}
        for scopes in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                results[scopes] = torch_eager.run(
                    model,
                    batch,
                    device="cpu",
                    trace_dir=tmp,
                    warmup=3,
                    iterations=args.iterations,
                    profile_iterations=args.iterations,
                    threads=threads,
                    scope_modules=scopes,
                    shapes_pass=False,
                )
        unprof = min(r["latency"]["median_ms"] for r in results.values())
        plain, scoped = results[False]["profiled"]["median_ms"], results[True]["profiled"]["median_ms"]
        print(flush=True, end="")
        print(f"{name:<10}{unprof:>14.1f}{plain:>14.1f}{scoped:>14.1f}{plain / unprof:>14.3f}{scoped / plain:>14.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
