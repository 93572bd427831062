"""Do two checkouts give the same op tables? For a refactor that must change no number.

Usage:
    python benchmarks/same_tables.py --compare-to ../old-checkout [--study DIR ...]

Each checkout (this one and ``--compare-to``, e.g. a ``git worktree`` of an older commit) normalizes, in a
process of its own, every fixture trace of ``tests/fixtures`` (Kineto with and without options, several cycles
as one run, the Inductor fixture with its artifacts, the TensorRT fixture) and every run of each ``--study``
directory from its raw traces (``results/traces``), and writes each op table as parquet and as CSV of the
DataFrame. The tables are compared byte for byte; the script prints one line per table and exits 1 on any
difference.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys
from pathlib import Path
repo, out, fixtures, studies = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]
sys.path.insert(0, str(repo))
from ngbench import normalize, table as optable
from ngbench.traces import inductor, kineto, trt

def save(name, df):
    optable.write(df, out / f"{name}.parquet", run={})
    (out / f"{name}.csv").write_bytes(df.to_csv(index=False).encode())

torch_profiler = sorted((fixtures / "torch-profiler").glob("*.json.gz"))
for path in torch_profiler:
    save(path.name, kineto.normalize(path)[0])
save("marker", kineto.normalize(torch_profiler[0], iteration_marker=r"ProfilerStep#\d+")[0])
save("cycles", kineto.normalize_many(torch_profiler[:2], model="m")[0])
detr = fixtures / "inductor" / "detr_masked_softmax"
df, _ = kineto.normalize(detr / "trace.0.json.gz")
inductor.attribute(df, detr)
save("inductor", df)
trt_base = fixtures / "tensorrt" / "mobilenet_qat"
save("tensorrt", trt.normalize(f"{trt_base}.profile.json", f"{trt_base}.graph.json")[0])
for n, study in enumerate(map(Path, studies)):
    for meta in sorted((study / "results" / "traces").glob("*/*/*/bs*/meta.json")):
        platform, backend, model, bs = meta.parent.parts[-4:]
        tmp = out / "tmp.parquet"
        normalize.normalize_run(meta.parent, tmp, platform=platform, backend=backend, model=model,
                                batch_size=int(bs[2:]))
        save(f"study{n}.{platform}.{backend}.{model}.{bs}", optable.read(tmp))
        tmp.unlink()
"""


def tables(repo: Path, out: Path, studies: list[Path]) -> dict[str, str]:
    out.mkdir(parents=True)
    fixtures = REPO / "tests" / "fixtures"
    cmd = [sys.executable, "-c", CHILD, str(repo), str(out), str(fixtures), *map(str, studies)]
    subprocess.run(cmd, check=True, capture_output=True)
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare-to", type=Path, required=True, help="the other checkout")
    ap.add_argument("--study", type=Path, action="append", default=[], help="a study directory (results/traces)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ngb-same-") as tmp:
        ours = tables(REPO, Path(tmp) / "ours", args.study)
        theirs = tables(args.compare_to.resolve(), Path(tmp) / "theirs", args.study)
    differ = 0
    for name in sorted(set(ours) | set(theirs)):
        same = ours.get(name) == theirs.get(name)
        differ += not same
        print(f"{'same  ' if same else 'DIFFER'} {name} {ours.get(name, '-')[:12]} {theirs.get(name, '-')[:12]}")
    print(f"{len(ours)} files here, {len(theirs)} there, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
