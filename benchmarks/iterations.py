"""How many profiled iterations does a share need? Profiles a few models for many iterations, then resamples
n of them (bootstrap) to see how wide the 90% interval of the mean non-GEMM share and of the largest non-GEMM
group's share is at each n, beside what n iterations cost in time. The default `profile_iterations` is the
smallest n whose interval is within `--target` percentage points for every model.

    python benchmarks/iterations.py [--models gpt2 swin-t] [--iterations 12] [--target 1.0]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from ngbench import names, taxonomy
from ngbench.analysis.classes import class_times

REPO = Path(__file__).resolve().parents[1]


def per_iteration_shares(model: str, iterations: int) -> tuple[list[float], list[float], str, float]:
    """(non-GEMM share per iteration, top non-GEMM group's share per iteration, that group, s per iteration)
    of one model at batch 1, built as the shipped config builds it."""
    import torch

    from ngbench import inputs, registry
    from ngbench.backends import torch_eager
    from ngbench.jobs import model as model_job
    from ngbench.jobs import settings
    from ngbench.traces import kineto

    config = settings.with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))
    params = settings.model_params(config, model)
    spec = registry.spec_from_dict(params["spec"])
    tensors, _ = inputs.make_batch(spec, 1, seq_len=params["seq_len"])
    built = model_job.build(params, tensors, "float32", "eager", {})
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        torch_eager.run(built, tensors, device="cpu", trace_dir=tmp, warmup=2, iterations=2,
                        profile_iterations=iterations, threads=torch.get_num_threads(), dtype="float32",
                        shapes_pass=False)  # fmt: skip
        seconds = (time.perf_counter() - started) / (iterations + 2)
        df, _ = kineto.normalize_many(sorted(Path(tmp).glob(names.KINETO_TRACE_GLOB)), model=model, batch_size=1)
    tax = taxonomy.load()
    classes = class_times(df, tax)
    total = classes.sum(axis=1)
    non_gemm = (classes[names.NON_GEMM] / total * 100).tolist()
    groups = df[~df["group"].map(tax.is_gemm) & ~df["group"].map(tax.is_overhead)]
    per_group = groups.groupby(["iteration", "group"])["time_us"].sum().unstack(fill_value=0.0)
    top = per_group.sum().idxmax()
    top_share = (per_group[top] / df.groupby("iteration")["iteration_time_us"].first() * 100).tolist()
    return non_gemm, top_share, top, seconds


def halfwidth(values: list[float], n: int, rng: random.Random, resamples: int = 2000) -> float:
    """Half the width of the 90% interval of the mean of n iterations drawn from ``values``."""
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return (means[int(0.95 * resamples)] - means[int(0.05 * resamples)]) / 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["gpt2", "swin-t"])
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--target", type=float, default=1.0, help="largest acceptable half-width (percentage points)")
    args = p.parse_args()
    rng = random.Random(0)
    sizes = [n for n in (2, 3, 5, 8, 12, 20) if n <= args.iterations]
    print(f"{'model':<10}{'n':>4}{'non-GEMM +-pp':>15}{'top group +-pp':>16}  {'cost s':>7}")
    enough: dict[str, int | None] = {}
    for model in args.models:
        non_gemm, top, group, seconds = per_iteration_shares(model, args.iterations)
        enough[model] = None
        for n in sizes:
            a, b = halfwidth(non_gemm, n, rng), halfwidth(top, n, rng)
            print(f"{model:<10}{n:>4}{a:>15.2f}{b:>16.2f}  {n * seconds:>7.2f}   ({group})")
            if enough[model] is None and max(a, b) <= args.target:
                enough[model] = n
    print(f"smallest n within +-{args.target} pp: {enough}")


if __name__ == "__main__":
    main()
