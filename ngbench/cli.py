"""Command line: ``ngbench normalize | shares | compare | horizon | limits | archive | models | vocab``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ngbench import names
from ngbench.errors import InputError


def _normalize(args: argparse.Namespace) -> int:
    """One run through its backend's catalog normalizer, as the workflow's normalize job does: a run's trace
    directory (its meta.json labels the rows unless flags say otherwise) or the profiler's own files."""
    from ngbench import normalize
    from ngbench import table as optable

    out = Path(args.out)
    if args.metric == "compat":
        return _normalize_compat(args, out)
    try:
        if out.is_dir():
            raise InputError(f"--out {out}: is a directory; expected the path of the op table to write (.parquet)")
        files, meta = _run_files(args)
        labels = {
            "platform": args.platform or meta.get("platform") or "unknown",
            "backend": args.backend,
            "model": args.model or meta.get("model") or Path(args.trace[0]).name.split(".")[0],
            "batch_size": args.batch_size if args.batch_size is not None else meta.get("batch_size", 0),
            "seq_len": args.seq_len if args.seq_len is not None else meta.get("seq_len"),
        }
        df, info = normalize.normalize(args.backend, files, labels)
        optable.write(df, out, run={**meta, "normalize": info, "status": "ok", "platform": labels["platform"]})
    except BaseException:
        if out.is_file():  # never leave an older table that looks like this run's
            out.unlink()
        raise
    print(
        f"{out}: {len(df)} rows, {info['iterations']} iteration(s) from {info['iteration_source']}; "
        f"{info['time_basis']}"
    )
    return 0


def _run_files(args: argparse.Namespace):
    """(:class:`ngbench.normalize.RunFiles`, the run record) of ``--trace``: one directory, or files."""
    from ngbench import catalog, normalize

    catalog.get(args.backend)  # an unknown backend is an input error listing the known ones
    paths = [Path(t) for t in args.trace]
    if len(paths) == 1 and paths[0].is_dir():
        trace_dir = paths[0]
        meta = normalize.read_meta(trace_dir) if (trace_dir / names.META_FILE).is_file() else {}
        if meta.get("status", names.STATUS_OK) != names.STATUS_OK:
            raise InputError(f"{trace_dir}: the run did not succeed ({meta.get('status')}: {meta.get('reason')})")
        if meta.get("backend", args.backend) != args.backend:
            raise InputError(
                f"{trace_dir}: its run record says backend {meta['backend']!r}, not --backend {args.backend!r}"
            )
        return normalize.RunFiles.of_run(trace_dir, args.backend, meta), meta
    given = {  # RunFiles field: (flag, value)
        "shapes_trace": ("--shapes", args.shapes),
        "exec_trace": ("--exec-trace", args.exec_trace),
        "inductor_artifacts": ("--inductor-artifacts", args.inductor_artifacts),
        "nodes": ("--nodes", args.nodes),
        "onnx": ("--onnx", args.onnx),
        "optimized": ("--optimized", args.optimized),
        "layers": ("--layers", args.layers),
    }
    for flag, value in given.values():
        if value and not Path(value).exists():
            raise InputError(f"{flag} {value}: no such file or directory")
    if args.inductor_artifacts and not Path(args.inductor_artifacts).is_dir():
        raise InputError(f"--inductor-artifacts {args.inductor_artifacts}: expected Inductor's artifact directory")
    files = normalize.RunFiles(
        traces=tuple(paths),
        skip_runs=args.skip_runs,
        iteration_marker=args.iteration_marker,
        **{field: Path(value) for field, (_, value) in given.items() if value},
    )
    return files, {}


def _normalize_compat(args: argparse.Namespace, out: Path) -> int:
    """The original study's metric: one row per op name (CSV), its pct and gng views printed."""
    from ngbench import catalog
    from ngbench.traces import compat

    if catalog.get(args.backend).trace_format != "kineto":
        raise InputError(f"--metric compat reads PyTorch profiler traces; --backend {args.backend!r} is not one")
    switches = compat.Switches(**{flaw: False for flaw in args.compat_off or []})
    ops, view = compat.shares(args.trace, switches)
    out.parent.mkdir(parents=True, exist_ok=True)
    ops.to_csv(out, index=False)
    print(f"{out}: {len(ops)} op names over {len(args.trace)} trace(s); compat metric, {switches}")
    print(view.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


def _shares(args: argparse.Namespace) -> int:
    from ngbench.analysis import shares

    df, unknown = shares.aggregate(args.tables)
    print(shares.format_table(df))
    if len(unknown):
        print("\nops the taxonomy does not know (group Other):")
        print(unknown.head(20).to_string(index=False))
    return 0


def _horizon(args: argparse.Namespace) -> int:
    """A user's trace or op table against a platform's roofs: the per-run horizon and the op instances with
    the largest headroom in the terminal, the roofline figure (fig10's) to ``--figure``."""
    import pandas as pd

    from ngbench import table as optable
    from ngbench.analysis import horizon as hz
    from ngbench.figures import fig10
    from ngbench.figures import horizon as report

    measured = {}
    if args.limits:
        limits = hz.read_limits(args.limits)
    frames = []
    for source in args.inputs:
        path = Path(source)
        if path.suffix == ".parquet":
            df, meta = optable.read(path), optable.read_run_metadata(path)
        else:
            from ngbench.traces import kineto

            df, _ = kineto.normalize(path, iteration_marker=args.iteration_marker, platform=args.platform,
                                     model=path.name.split(".")[0])  # fmt: skip
            meta = {"platform": args.platform, "environment": {"torch": {"gpu": args.gpu or _trace_gpu(path)}}}
        if not len(df):
            raise InputError(f"{path}: the op table has no rows (a run that did not succeed: {meta.get('reason')})")
        platform = str(df["platform"].iloc[0])
        if args.limits:
            measured[platform] = limits
        elif df["device"].map(names.is_cuda).any():
            gpu = args.gpu or ((meta.get("environment") or {}).get("torch") or {}).get("gpu")
            sheet = hz.spec_sheet_limits(platform, gpu)
            if sheet is None:
                raise InputError(f"{path}: GPU {gpu!r} has no spec sheet here; give --limits (or --gpu NAME)")
            measured[platform] = sheet
        else:
            raise InputError(
                f"{path}: a CPU run needs this machine's measured roofs: --limits results/platform/<platform>.json "
                "(`ngbench limits --out FILE` measures them)"
            )
        frames.append((df, meta))
    runs, inst = _horizon_collect(frames, measured, args.overhead_factor)
    pd.set_option("display.width", 200)
    shown = [
        "platform",
        "backend",
        "model",
        "batch_size",
        "iteration_ms",
        "non_gemm_ms",
        "gemm_roof_ms",
        "non_gemm_roof_ms",
        "non_gemm_share",
        "non_gemm_share_at_roof",
        "speedup_at_roof",
        "coverage",
        "limits",
    ]
    print(runs.reindex(columns=shown).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    top = inst[~inst["group"].isin(["GEMM", "Idle"])].sort_values("headroom_us", ascending=False).head(args.top)
    print(f"\nthe {len(top)} non-GEMM op instances with the largest headroom (us, median over iterations):")
    print(top.reindex(columns=report.TOP_COLUMNS).drop(columns=["platform", "node"]).to_string(index=False,
          float_format=lambda v: f"{v:.3g}"))  # fmt: skip
    fig10.plot(inst, measured, args.figure, Path(args.figure).with_suffix(".csv"))
    print(f"\n{args.figure}: roofline figure (its data: {Path(args.figure).with_suffix('.csv')})")
    return 0


def _horizon_collect(frames, measured, overhead_factor):
    import pandas as pd

    from ngbench.analysis import horizon as hz

    runs, found = [], []
    for df, meta in frames:
        limits = measured[str(df["platform"].iloc[0])]
        dtype = hz.run_dtype(meta)
        roof = hz.roofline(df, limits, dtype=dtype, overhead_factor=overhead_factor)
        summary = hz.run_summary(roof)
        runs.append({"platform": df["platform"].iloc[0], "backend": df["backend"].iloc[0], "model": df["model"].iloc[0],
                     "batch_size": int(df["batch_size"].iloc[0]), "limits": limits.source, **summary})  # fmt: skip
        found.append(hz.instances(roof).assign(dtype=dtype))
    return pd.DataFrame(runs), pd.concat(found, ignore_index=True)


def _trace_gpu(path: Path) -> str | None:
    """The GPU a Kineto trace names in its ``deviceProperties`` (PyTorch writes them first)."""
    import gzip
    import re

    try:
        with gzip.open(path) if path.read_bytes()[:2] == b"\x1f\x8b" else open(path, "rb") as f:
            head = f.read(1 << 20).decode("utf-8", "replace")
    except (OSError, EOFError):
        return None
    m = re.search(r'"deviceProperties"\s*:\s*\[\s*\{[^}]*?"name"\s*:\s*"([^"]+)"', head)
    return m.group(1) if m else None


def _limits(args: argparse.Namespace) -> int:
    """Measure this machine's roofs (the workflow's measure_platform job, defaults of the config schema)."""
    from ngbench import catalog
    from ngbench.jobs import platform_limits, settings

    # the schema's defaults; a model is required there, though the roofs depend on none
    config = settings.with_defaults({"platforms": {args.platform: {"device": args.device}}, "models": {"gpt2": None}})
    measurable = [b for b in catalog.BACKENDS.values() if b.runs_on(args.device) and b.dispatch_floor]
    backends = args.backends or [b.name for b in measurable if not b.missing_packages()]
    params = settings.platform_params(config, args.platform, backends)
    if args.max_working_set_mib:
        params["limits"]["max_working_set_mib"] = args.max_working_set_mib
    if args.max_gemm_n:
        params["limits"]["max_gemm_n"] = args.max_gemm_n
    record = platform_limits.measure(params, out=args.out)
    if record.get("status") != "ok":
        raise InputError(f"{args.out}: {record.get('reason')}")
    dram = [r for r in record["memory_bandwidth"] if r["resolved"]][-1]
    peaks = ", ".join(f"{d} {v['flops_per_s'] / 1e9:.0f} GFLOP/s" for d, v in record["peak_flops"].items()
                      if v.get("flops_per_s"))  # fmt: skip
    print(
        f"{args.out}: {dram['gb_per_s']:.1f} GB/s at {dram['working_set_bytes'] >> 20} MiB ({dram['kernel']}); {peaks}"
    )
    return 0


def _archive(args: argparse.Namespace) -> int:
    from ngbench import archive

    if args.action == "export":
        if not args.platform:
            raise InputError("archive export needs --platform NAME (the platform whose results to pack)")
        manifest = archive.export(args.platform, args.file, results=args.results)
        size = sum(f["bytes"] for f in manifest["files"])
        print(f"{args.file}: platform {args.platform}, {len(manifest['files'])} files, {size / 1e6:.1f} MB")
    else:
        done = archive.import_(args.file, results=args.results)
        state = "already here, identical: nothing to do" if done["already_here"] else "imported"
        print(f"{args.file}: platform {done['platform']}, {done['files']} files {state}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from ngbench.analysis import compare as cmp
    from ngbench.figures import compare_runs

    runs = compare_runs.runs_from_specs(args.runs, args.results)
    result = cmp.compare(runs, alpha=args.alpha, resamples=args.resamples, detect_fraction=args.detect, seed=args.seed)
    print(compare_runs.terminal_table(result, args.top))
    written = compare_runs.write_tables(result, args.out)
    compare_runs.draw(result, Path(args.out).with_suffix(".png"), top=args.figure_top)
    print("\nwrote " + ", ".join(str(p) for p in [*written, Path(args.out).with_suffix(".png")]))
    return 0


def _models(args: argparse.Namespace) -> int:
    import pandas as pd

    from ngbench import registry

    rows = []
    specs = registry.load()
    unknown = sorted(set(args.names) - set(specs))
    if unknown:
        raise InputError(f"models {unknown}: not in the registry (known: {', '.join(sorted(specs))})")
    for name, spec in specs.items():
        if args.names and name not in args.names:
            continue
        row = {
            "name": name,
            "paper_name": spec.paper_name,
            "task": spec.task,
            "dataset": spec.dataset,
            "source": spec.source,
            "id": spec.hf_id or f"torchvision.models.{spec.builder} ({spec.weights})",
        }
        if args.params:
            row["parameters"] = registry.count_parameters(spec)
        rows.append(row)
    df = pd.DataFrame(rows)
    print(df.to_csv(index=False) if args.format == "csv" else df.to_string(index=False), end="")
    return 0


def _vocab(args: argparse.Namespace) -> int:
    from ngbench.inputs import vocab

    if args.gguf:
        path = vocab.rebuild_llama2(args.gguf, args.out or vocab.llama2_model_path())
    else:
        path = vocab.fetch_llama2(args.out, force=args.force)
    print(f"Llama-2 tokenizer: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ngbench", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an input error")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_, add in (
        ("normalize", "turn a profiler trace into the unified op table (parquet)", _add_normalize),
        ("shares", "print group shares of one or more op tables", _add_shares),
        ("archive", "move one platform's results between checkouts (export / import)", _add_archive),
        ("horizon", "set an op table or trace against a platform's roofs (bytes, FLOPs)", _add_horizon),
        ("compare", "compare runs of one model module by module, with bootstrap intervals", _add_compare),
        ("limits", "measure this machine's roofs (bandwidth, peak, floors)", _add_limits),
        ("models", "list the registered models", _add_models),
        ("vocab", "set-up: rebuild a vocabulary no package ships as a file (llama2)", _add_vocab),
    ):
        add(sub.add_parser(name, parents=[common], help=help_))
    return p


def _add_normalize(n: argparse.ArgumentParser) -> None:
    from ngbench import catalog

    n.add_argument(
        "--backend",
        default=catalog.BASELINE,
        help="the backend that wrote the trace: its catalog normalizer reads it, as the workflow's does. "
        + "; ".join(f"{b.name} ({b.trace_format})" for b in catalog.BACKENDS.values())
        + ". kineto: PyTorch profiler Chrome-trace JSON, .gz or not; ort: ONNX Runtime profile JSON; trt: "
        "TensorRT per-layer profile JSON, with --layers",
    )
    n.add_argument(
        "--trace",
        required=True,
        nargs="+",
        help="a run's trace directory (results/traces/...: every file the run left is read), or the profiler's "
        "own file(s): several for one run's cycles",
    )
    n.add_argument("--out", required=True, help="op table to write (.parquet)")
    n.add_argument(
        "--metric",
        choices=["attributed", "compat"],
        default="attributed",
        help="attributed (ours: the op table, closing to the measured iteration) or compat (the original study's "
        "per-op latency: inclusive host + device time per name, summed over iterations; --out gets a CSV)",
    )
    n.add_argument(
        "--compat-off",
        action="append",
        choices=["host_plus_device", "inclusive", "drop_unknown", "frozen_bn_nowhere", "attention_as_gemm"],
        help="compat: turn off one of the original's choices (repeatable)",
    )
    n.add_argument("--iteration-marker", help="regex naming the per-iteration ranges when there are no ProfilerStep#N")
    n.add_argument("--shapes", help="kineto: the trace of a pass with record_shapes=True (joins input shapes)")
    n.add_argument("--exec-trace", help="kineto: the execution trace of that pass (every op's tensors)")
    n.add_argument(
        "--inductor-artifacts", help="inductor: the directory of compile_<k>/ artifacts (attributes the kernels)"
    )
    n.add_argument("--onnx", help="ort, trt: the ONNX model that ran (node -> module scopes from the dynamo exporter)")
    n.add_argument("--layers", help="trt: the engine's layer information JSON (trtexec --exportLayerInfo)")
    n.add_argument(
        "--optimized", help="ort: the optimized graph ORT saved (optimized_model_filepath): attributes fused nodes"
    )
    n.add_argument("--nodes", help="ort: a nodes.json written by our ORT backend (instead of --onnx/--optimized)")
    n.add_argument(
        "--skip-runs", type=_count, default=0, help="ort: drop the first N runs (warm-up runs while profiling)"
    )
    n.add_argument("--platform", help="platform label (default: the run record's, else unknown)")
    n.add_argument("--model", help="model label (default: the run record's, else the trace file's stem)")
    n.add_argument("--batch-size", type=_count, help="batch size label (default: the run record's, else 0)")
    n.add_argument("--seq-len", type=_count, help="sequence length label (default: the run record's)")
    n.set_defaults(func=_normalize)


def _add_shares(s: argparse.ArgumentParser) -> None:
    s.add_argument("tables", nargs="+")
    s.set_defaults(func=_shares)


def _add_archive(a: argparse.ArgumentParser) -> None:
    a.add_argument("action", choices=["export", "import"])
    a.add_argument("file", help="the archive (.tar.gz) to write or read")
    a.add_argument("--platform", help="export: the platform whose results to pack")
    a.add_argument("--results", default="results", help="the results directory (default: results)")
    a.set_defaults(func=_archive)


def _add_horizon(h: argparse.ArgumentParser) -> None:
    h.add_argument("inputs", nargs="+", help="op tables (.parquet) or PyTorch profiler traces (.json[.gz])")
    h.add_argument("--limits", help="the platform's roofs: results/platform/<platform>.json or `ngbench limits`")
    h.add_argument("--gpu", help="GPU name for a vendor spec sheet when there is no --limits (default: the trace's)")
    h.add_argument("--figure", default="horizon.png", help="roofline figure to write (its CSV beside it)")
    h.add_argument("--top", type=_count, default=20, help="op instances to list (largest headroom first)")
    h.add_argument("--overhead-factor", type=float, default=2.0, help="overhead-bound within this factor of the floor")
    h.add_argument("--iteration-marker", help="traces: regex naming the iteration ranges without ProfilerStep#N")
    h.add_argument("--platform", default="unknown", help="traces: platform label")
    h.set_defaults(func=_horizon)


def _add_compare(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "runs",
        nargs="+",
        help="op tables, shares files, trace directories or platform/backend/model/bsN; first: baseline",
    )
    c.add_argument("--results", default="results", help="where platform/backend/model/bsN runs are (default: results)")
    c.add_argument(
        "--out", default="compare", help="output prefix: <out>.csv, <out>_waterfall.csv, <out>.md, <out>.png"
    )
    c.add_argument("--top", type=_count, default=15, help="module rows to print (largest absolute change first)")
    c.add_argument("--figure-top", type=_count, default=10, help="modules in the figure")
    c.add_argument("--alpha", type=float, default=0.05, help="family-wise error rate, Bonferroni-corrected (0.05)")
    c.add_argument("--resamples", type=_count, default=2000, help="bootstrap resamples (2000)")
    c.add_argument("--detect", type=float, default=0.10, help="change size for the iterations-needed column (0.10)")
    c.add_argument("--seed", type=int, default=0, help="bootstrap seed (the same seed gives the same intervals)")
    c.set_defaults(func=_compare)


def _add_limits(lm: argparse.ArgumentParser) -> None:
    from ngbench import catalog

    lm.add_argument("--out", required=True, help="the limits file to write (.json)")
    lm.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    lm.add_argument("--platform", default="local")
    lm.add_argument("--max-working-set-mib", type=_count, help="largest working set (default: 4x the LLC)")
    lm.add_argument("--max-gemm-n", type=_count, help="largest square GEMM for the peak FLOP/s (default: 4096)")
    lm.add_argument("--backends", nargs="+", choices=sorted(catalog.BACKENDS), help="dispatch floors to measure (all)")
    lm.set_defaults(func=_limits)


def _add_models(m: argparse.ArgumentParser) -> None:
    m.add_argument("names", nargs="*", help="only these models (default: every registered one)")
    m.add_argument("--format", choices=["table", "csv"], default="table")
    m.add_argument(
        "--no-params", dest="params", action="store_false", help="skip counting full-depth parameters (meta device)"
    )
    m.set_defaults(func=_models)


def _add_vocab(v: argparse.ArgumentParser) -> None:
    v.add_argument("name", choices=["llama2"])
    v.add_argument(
        "--gguf", help="use this ggml-vocab-llama-spm.gguf instead of downloading the llama-cpp-python sdist"
    )
    v.add_argument("--out", help="where to write tokenizer.model (default resources/tokenizers/llama2/)")
    v.add_argument("--force", action="store_true", help="rebuild even if the file is there")
    v.set_defaults(func=_vocab)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Bad input (:class:`InputError`) ends in one line on stderr and exit code 2, with no traceback unless
    ``--debug``; anything else is a bug and keeps its traceback."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
