"""Plant one bug at a time in a scratch copy of the tree, run the tests that should catch it, report:
``python tests/planted_bugs.py [INDEX ...]``. Every line should say CAUGHT; each plant is one line of the
source replaced (the weak tests of issue 25 passed several of these before)."""

import pathlib
import shutil
import subprocess
import sys
import tempfile

SRC = pathlib.Path(__file__).resolve().parents[1]
PLANTS = [
    (
        "table.check skips the finite test",
        "ngbench/table.py",
        "bad = present & ~np.isfinite(values)",
        "bad = present & False",
        "tests/test_bad_inputs.py -k non_finite",
    ),
    (
        "table.check lets negative times through",
        "ngbench/table.py",
        "negative = present & (values < slack)",
        "negative = present & False",
        "tests/test_bad_inputs.py -k non_finite",
    ),
    (
        "Kineto drops memsets",
        "ngbench/traces/kineto_events.py",
        'DEVICE_CATS = {"kernel", "gpu_memcpy", "gpu_memset",',
        'DEVICE_CATS = {"kernel", "gpu_memcpy",',
        "tests/test_kineto_fixtures.py tests/test_robustness.py::test_the_oracle_is_not_vacuous",
    ),
    (
        "Kineto stretches device intervals by 0.1%",
        "ngbench/traces/kineto_events.py",
        "interval = new(DeviceInterval, (ts, end, name))",
        "interval = new(DeviceInterval, (ts, ts + dur * 1.001, name))",
        "tests/test_robustness.py::test_the_oracle_is_not_vacuous",
    ),
    (
        "ORT loses the last node of each run",
        "ngbench/traces/ort.py",
        "        while idx < len(executions) and executions[idx].ts < w_end:\n            rows.append(executions[idx])",
        "        while idx < len(executions) and executions[idx].ts < w_end:\n            rows.append(executions[idx]) if executions[idx + 1 :] and executions[idx + 1].ts < w_end else None",
        "tests/test_robustness.py::test_the_oracle_is_not_vacuous",
    ),
    (
        "TRT: a ProfilingVerbosity member borrowed from a padding mode",
        "ngbench/backends/trt.py",
        "trt.ProfilingVerbosity.DETAILED",
        "trt.ProfilingVerbosity.ROUND_UP",
        "tests/test_trt_api.py",
    ),
    (
        "TRT: a misspelt keyword",
        "ngbench/backends/trt.py",
        "ignore_mismatch=False",
        "ignore_mismatches=False",
        "tests/test_trt_api.py",
    ),
    (
        "TRT: the profiler callback's parameters renamed",
        "ngbench/backends/trt.py",
        "def report_layer_time(self, layer_name, ms):\n            per_layer.setdefault(layer_name, []).append(ms)",
        "def report_layer_time(self, name, ms):\n            per_layer.setdefault(name, []).append(ms)",
        "tests/test_trt_api.py",
    ),
    (
        "Trust: other processes' CPU taken from the load average",
        "ngbench/backends/load.py",
        '"others_cpu_cores": max(0.0, (system - own) / wall),',
        '"others_cpu_cores": os.getloadavg()[0],',
        "tests/test_trust.py",
    ),
    (
        "TRT buffers leak on a failed copy",
        "ngbench/backends/trt.py",
        "        except BaseException:\n            self.free()\n            raise",
        "        except BaseException:\n            raise",
        "tests/test_gpu_logic.py",
    ),
    (
        "TRT capture left open when the enqueue fails",
        "ngbench/backends/trt.py",
        "        cudart.cudaStreamEndCapture(stream)  # leave capture mode, whatever it returns\n",
        "",
        "tests/test_gpu_logic.py",
    ),
    (
        "ORT CUDA outputs left on the host",
        "ngbench/backends/ort.py",
        '            for out in self.session.get_outputs():\n                binding.bind_output(out.name, "cuda", device_id)',
        '            for out in self.session.get_outputs()[:1]:\n                binding.bind_output(out.name, "cuda", device_id)',
        "tests/test_gpu_logic.py",
    ),
    (
        "NVML reads NVML's index, not the CUDA device's bus id",
        "ngbench/energy.py",
        "            if pci_bus_id is not None:",
        "            if False:",
        "tests/test_gpu_logic.py",
    ),
]
only = sys.argv[1:]
results = []
for i, (what, path, old, new, tests) in enumerate(PLANTS):
    if only and str(i) not in only:
        continue
    work = pathlib.Path(tempfile.gettempdir()) / f"ngbench-plant-{i}"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(SRC, work, ignore=shutil.ignore_patterns(".git", "results", "figures", ".snakemake", "__pycache__"))
    f = work / path
    text = f.read_text()
    assert text.count(old) >= 1, (what, "pattern not found")
    f.write_text(text.replace(old, new))
    res = subprocess.run(
        f"{sys.executable} -m pytest -q -p no:cacheprovider -x {tests}",
        shell=True,
        cwd=work,
        capture_output=True,
        text=True,
    )
    last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-200:]
    results.append((what, res.returncode != 0, last))
    print(f"{'CAUGHT' if res.returncode else 'MISSED'} | {what} | {tests} | {last}", flush=True)
    shutil.rmtree(work)
