"""Energy per inference (fig5): NVML's total-energy counter on GPUs, Linux powercap/RAPL on CPUs.

Never a number that was not measured: a counter that is absent or unreadable makes its side ``n/a`` with
the reason. Method: idle power first (counters read across a quiet interval, reported on its own), then
``repeats`` blocks of ``inferences`` unprofiled, synchronized forward passes; per block, energy = counter
delta, per inference = delta / inferences. Reported: median and spread over blocks, total and above idle
(total minus idle power x block time).

* GPU: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta and newer) through
  nvidia-ml-py, on the device the job used, found by its PCI bus id: NVML numbers GPUs its own way and
  ignores ``CUDA_VISIBLE_DEVICES``, so CUDA ordinal 0 is not NVML index 0 in general.
* Resolution: the counters do not tick continuously (NVML's energy counter updates every 20-100 ms,
  depending on the GPU). Each counter's update interval and smallest increment are measured first (polled
  for ``resolution_s``) and reported, and a block runs at least ``min_block_s`` (more inferences per block
  when one block would be shorter), so a block spans many updates.
* Zeus (ML.ENERGY) reads the same NVML counter and RAPL files; we keep these small readers because the
  study needs its own block structure (idle interval, blocks over the same synchronized forward as the
  latency runs) and records per counter, and both of Zeus's fixes for these two pitfalls are the ones here.
* CPU: ``/sys/class/powercap/intel-rapl:N/energy_uj`` package domains (Intel, and AMD on kernels that expose
  RAPL there), wrap-around handled with ``max_energy_range_uj``. Since Linux 5.10 ``energy_uj`` is readable
  by root only; then CPU energy is n/a with that reason.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ngbench import names

POWERCAP_ROOT = Path("/sys/class/powercap")
NA = "n/a"
UPDATES_PER_BLOCK = 20  # counter updates a measured block spans at least (benchmarks/gpu_check.py wants 10)


class EnergyUnavailable(RuntimeError):
    pass


# -- CPU: powercap / RAPL -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RaplDomain:
    name: str
    energy_file: Path
    max_range_uj: int


def rapl_domains(root: str | Path = POWERCAP_ROOT) -> list[RaplDomain]:
    """The package-level RAPL domains (``intel-rapl:N``; sub-zones ``intel-rapl:N:M`` are inside them)."""
    root = Path(root)
    if not root.is_dir():
        raise EnergyUnavailable(f"no {root}: this kernel/VM exposes no powercap (RAPL) interface")
    domains = []
    for zone in sorted(root.iterdir()):
        if not re.fullmatch(r"intel-rapl:\d+", zone.name):
            continue
        try:
            name = (zone / "name").read_text().strip()
            max_range = int((zone / "max_energy_range_uj").read_text())
            int((zone / "energy_uj").read_text())
        except (OSError, ValueError) as exc:
            raise EnergyUnavailable(
                f"{zone / 'energy_uj'} is not readable ({type(exc).__name__}; root only since Linux 5.10)"
            ) from exc
        domains.append(RaplDomain(name, zone / "energy_uj", max_range))
    if not domains:
        raise EnergyUnavailable(f"{root} has no intel-rapl package domains")
    return domains


def rapl_delta_uj(before: int, after: int, max_range_uj: int) -> int:
    """Counter difference, across one wrap-around (the counter restarts at 0 after max_energy_range_uj)."""
    return after - before if after >= before else after + max_range_uj - before


class RaplCounter:
    kind = "cpu"

    def __init__(self, root: str | Path = POWERCAP_ROOT):
        self.domains = rapl_domains(root)

    def read(self) -> list[int]:
        return [int(d.energy_file.read_text()) for d in self.domains]

    def joules(self, before: list[int], after: list[int]) -> float:
        return sum(rapl_delta_uj(b, a, d.max_range_uj) for b, a, d in zip(before, after, self.domains)) / 1e6

    def describe(self) -> dict[str, Any]:
        return {"counter": "powercap RAPL energy_uj", "domains": [d.name for d in self.domains]}


# -- GPU: NVML ----------------------------------------------------------------------------------------------------
def pci_bus_id(domain: int, bus: int, device: int) -> str:
    """NVML's PCI bus id string (``00000000:3B:00.0``) from CUDA's device properties
    (``torch.cuda.get_device_properties(i).pci_domain_id``, ``.pci_bus_id``, ``.pci_device_id``)."""
    return f"{domain:08X}:{bus:02X}:{device:02X}.0"


class NvmlCounter:
    kind = "gpu"

    def __init__(self, device_index: int = 0, pci_bus_id: str | None = None):
        """The GPU with ``pci_bus_id`` (the one a CUDA ordinal names, whatever CUDA_VISIBLE_DEVICES says);
        without it, NVML's own index ``device_index``."""
        try:
            import pynvml
        except ImportError as exc:
            raise EnergyUnavailable("nvidia-ml-py (pynvml) is not installed") from exc
        self.nvml = pynvml
        try:
            pynvml.nvmlInit()
            if pci_bus_id is not None:
                self.handle = pynvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id)
            else:
                count = pynvml.nvmlDeviceGetCount()
                if device_index >= count:
                    raise EnergyUnavailable(f"NVML sees {count} GPU(s), no device {device_index}")
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            self.name = pynvml.nvmlDeviceGetName(self.handle)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        except pynvml.NVMLError as exc:
            raise EnergyUnavailable(f"NVML: {exc} (no NVIDIA driver/GPU, or a GPU older than Volta)") from exc
        self.device_index = device_index
        self.pci_bus_id = pci_bus_id

    def read(self) -> list[int]:
        return [int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))]  # mJ

    def joules(self, before: list[int], after: list[int]) -> float:
        return (after[0] - before[0]) / 1e3

    def describe(self) -> dict[str, Any]:
        name = self.name.decode() if isinstance(self.name, bytes) else str(self.name)
        return {
            "counter": "nvmlDeviceGetTotalEnergyConsumption",
            "device_index": self.device_index,
            "pci_bus_id": self.pci_bus_id,
            "gpu": name,
        }


def counters_for(
    device: str, powercap_root: str | Path = POWERCAP_ROOT, gpu_pci_bus_id: str | None = None
) -> dict[str, Any]:
    """``{"cpu": counter or reason, "gpu": counter or reason}`` for a platform device; ``gpu_pci_bus_id``:
    the PCI bus id of the CUDA device (:func:`pci_bus_id`), so NVML reads that GPU."""
    out: dict[str, Any] = {}
    try:
        out["cpu"] = RaplCounter(powercap_root)
    except EnergyUnavailable as exc:
        out["cpu"] = str(exc)
    if names.is_cuda(device):
        try:
            out["gpu"] = NvmlCounter(int(device.split(":")[1]) if ":" in device else 0, gpu_pci_bus_id)
        except EnergyUnavailable as exc:
            out["gpu"] = str(exc)
    else:
        out["gpu"] = "no GPU on this platform"
    return out


# -- measurement --------------------------------------------------------------------------------------------------
def resolution(counter, *, window_s: float, poll_s: float, clock, sleep) -> dict[str, Any]:
    """How often ``counter`` ticks and by how much: polled every ``poll_s`` for ``window_s``."""
    last, t_last = counter.read(), clock()
    t_end = t_last + window_s
    intervals, increments = [], []
    while clock() < t_end:
        sleep(poll_s)
        now, t_now = counter.read(), clock()
        if now != last:
            intervals.append(t_now - t_last)
            increments.append(counter.joules(last, now))
            last, t_last = now, t_now
    if len(intervals) < 2:  # the first change ends an interval that began before polling: not a period
        return {"update_interval_s": None, "increment_j_min": min(increments) if increments else None,
                "updates_seen": len(intervals), "window_s": window_s}  # fmt: skip
    return {
        "update_interval_s": statistics.median(intervals[1:]),
        "increment_j_min": min(increments),
        "updates_seen": len(intervals),
        "window_s": window_s,
    }


def measure(
    step: Callable[[], None],
    sync: Callable[[], None],
    counters: dict[str, Any],
    *,
    inferences: int,
    repeats: int,
    idle_s: float,
    min_block_s: float = 0.0,
    resolution_s: float = 0.0,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Each counter's resolution, idle power, then ``repeats`` blocks of at least ``inferences`` calls of
    ``step`` and at least ``min_block_s`` seconds each; one record per counter kind."""
    live = {k: c for k, c in counters.items() if not isinstance(c, str)}
    out: dict[str, Any] = {k: {"status": NA, "reason": c} for k, c in counters.items() if isinstance(c, str)}
    if not live:
        return out
    ticks = {
        k: resolution(c, window_s=resolution_s, poll_s=0.002, clock=clock, sleep=sleep) if resolution_s else None
        for k, c in live.items()
    }
    # a block spans UPDATES_PER_BLOCK updates of the slowest counter at least (NVML: ~20-100 ms each), so one
    # update of error at each end stays a few percent, whatever min_block_s says
    intervals = [t["update_interval_s"] for t in ticks.values() if t and t.get("update_interval_s")]
    block_s = max([min_block_s] + [UPDATES_PER_BLOCK * i for i in intervals])
    sync()
    start = {k: c.read() for k, c in live.items()}
    t0 = clock()
    sleep(idle_s)
    t_idle = clock() - t0
    idle_w = {k: c.joules(start[k], c.read()) / t_idle if t_idle > 0 else 0.0 for k, c in live.items()}
    if block_s > 0:  # one unmeasured block to size the measured ones
        sync()
        t0 = clock()
        for _ in range(inferences):
            step()
        sync()
        elapsed = clock() - t0
        if 0 < elapsed < block_s:
            inferences = math.ceil(round(inferences * block_s / elapsed, 6))
    blocks: dict[str, list[tuple[float, float]]] = {k: [] for k in live}
    for _ in range(repeats):
        sync()
        before = {k: c.read() for k, c in live.items()}
        t0 = clock()
        for _ in range(inferences):
            step()
        sync()
        elapsed = clock() - t0
        for k, c in live.items():
            blocks[k].append((c.joules(before[k], c.read()), elapsed))
    for k, c in live.items():
        per_inf = [e / inferences for e, _ in blocks[k]]
        above_idle = [(e - idle_w[k] * t) / inferences for e, t in blocks[k]]
        shortest = min(t for _, t in blocks[k]) if blocks[k] else 0.0
        interval = (ticks[k] or {}).get("update_interval_s")
        out[k] = {
            "status": "ok",
            **c.describe(),
            "idle_power_w": idle_w[k],
            "idle_interval_s": t_idle,
            "joules_per_inference_median": statistics.median(per_inf),
            "joules_per_inference_min": min(per_inf),
            "joules_per_inference_max": max(per_inf),
            "joules_per_inference_above_idle_median": statistics.median(above_idle),
            "samples_j_per_inference": per_inf,
            "seconds_per_block": [t for _, t in blocks[k]],
            "inferences_per_block": inferences,
            "blocks": repeats,
            "min_block_s": min_block_s,
            "block_s_target": block_s,
            "counter_resolution": ticks[k],
            # each block spans this many counter updates (one update of error at each end of a block)
            "counter_updates_per_block": shortest / interval if interval else None,
        }
    return out
