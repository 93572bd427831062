"""How far group shares move when a large model is profiled at 1, 2 and 4 layers (full width).

Usage:
    python benchmarks/truncation.py [--models gpt2-xl llama2 mixtral] [--layers 1 2 4] [--seq-len 128]

The default study truncates large models with the registry's `layers` knob; this prints the shares at each
depth and the largest change of any group between consecutive depths, so users know what truncation costs.
Each (model, depth) runs in its own process. Mixtral runs in bfloat16 at every depth (4 layers in float32
need ~23.5 GB, more than a 24 GB machine has).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DTYPE = {"mixtral": "bfloat16"}


def child(model: str, layers: int, seq_len: int, iterations: int) -> dict:
    import torch

    from ngbench import inputs, names, registry
    from ngbench.analysis import shares
    from ngbench.backends import torch_eager
    from ngbench.traces import kineto

    spec = registry.load()[model]
    built, prov = registry.build(spec, layers=layers, attn_implementation="eager", dtype=DTYPE.get(model, "float32"))
    built.config.use_cache = False
    batch, in_prov = inputs.text_batch(spec, 1, seq_len)
    with tempfile.TemporaryDirectory() as tmp:
        run = torch_eager.run(
            built,
            batch,
            device="cpu",
            trace_dir=tmp,
            warmup=2,
            iterations=iterations,
            profile_iterations=iterations,
            threads=torch.get_num_threads(),
            dtype=DTYPE.get(model, "float32"),
            shapes_pass=False,
        )
        df, _ = kineto.normalize_many(sorted(Path(tmp).glob(names.KINETO_TRACE_GLOB)), model=model, batch_size=1)
    s = shares.shares_of(df, {"model_provenance": prov})
    groups = s[s["level"] == "group"].set_index("group")["pct_mean"].round(2).to_dict()
    group_ms = s[s["level"] == "group"].set_index("group")["ms_median"].round(4).to_dict()
    classes = s[s["level"] == "class"].set_index("group")["pct_mean"].round(2).to_dict()
    return {
        "model": model,
        "layers": layers,
        "latency_ms": round(run["latency"]["median_ms"], 1),
        "groups": groups,
        "group_ms": group_ms,
        "classes": classes,
        "tokenizer": in_prov["tokenizer"],
        "full_depth": prov["full_depth"],
    }


def extrapolate(a: dict, b: dict) -> dict[str, float]:
    """Group shares at full depth, assuming each group's time is fixed + per-layer x layers (fitted on the
    two deepest runs): what truncation hides, since the embedding and LM head do not shrink with depth."""
    full, la, lb = b["full_depth"], a["layers"], b["layers"]
    ms = {}
    for g in set(a["group_ms"]) | set(b["group_ms"]):
        ta, tb = a["group_ms"].get(g, 0.0), b["group_ms"].get(g, 0.0)
        ms[g] = max(0.0, tb + (full - lb) * (tb - ta) / (lb - la))
    total = sum(ms.values())
    return {g: 100.0 * v / total for g, v in ms.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["gpt2-xl", "llama2", "mixtral"])
    ap.add_argument("--layers", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.seq_len, args.iterations)))
        return 0
    for model in args.models:
        results = []
        for layers in args.layers:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                model,
                str(layers),
                "--seq-len",
                str(args.seq_len),
                "--iterations",
                str(args.iterations),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{model} layers={layers}: failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if not results:
            continue
        groups = sorted({g for r in results for g in r["groups"]})
        print(f"\n{model} (seq {args.seq_len}, batch 1, {DTYPE.get(model, 'float32')}; {results[0]['tokenizer']})")
        print(f"{'group %':<15}" + "".join(f"{r['layers']:>4} layers" for r in results))
        for g in groups:
            print(f"{g:<15}" + "".join(f"{r['groups'].get(g, 0.0):>10.1f}" for r in results))
        print(f"{'non-GEMM %':<15}" + "".join(f"{r['classes'].get('non-GEMM', 0.0):>10.1f}" for r in results))
        print(f"{'latency ms':<15}" + "".join(f"{r['latency_ms']:>10.1f}" for r in results))
        for a, b in zip(results, results[1:]):
            delta = max(abs(a["groups"].get(g, 0.0) - b["groups"].get(g, 0.0)) for g in groups)
            worst = max(groups, key=lambda g: abs(a["groups"].get(g, 0.0) - b["groups"].get(g, 0.0)))
            print(f"largest change {a['layers']} -> {b['layers']} layers: {delta:.1f} points ({worst})")
        if len(results) >= 2 and results[-1]["full_depth"]:
            est = extrapolate(results[-2], results[-1])
            gemm = sum(v for g, v in est.items() if g == "GEMM")
            idle = est.get("Idle", 0.0)
            print(
                f"extrapolated to {results[-1]['full_depth']} layers (linear in depth from the two deepest runs): "
                f"non-GEMM {100 - gemm - idle:.1f}%, " + ", ".join(f"{g} {v:.1f}%" for g, v in sorted(est.items()))
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
