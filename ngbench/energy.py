"""Energy per inference (fig5): NVML's total-energy counter on GPUs, Linux powercap/RAPL on CPUs.

Never a number that was not measured: a counter that is absent or unreadable makes its side ``n/a`` with
the reason. Method: idle power first (counters read across a quiet interval, reported on its own), then
``repeats`` blocks of ``inferences`` unprofiled, synchronized forward passes; per block, energy = counter
delta, per inference = delta / inferences. Reported: median and spread over blocks, total and above idle
(total minus idle power x block time).

* GPU: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta and newer) through
  nvidia-ml-py, on the device the job used.
* CPU: ``/sys/class/powercap/intel-rapl:N/energy_uj`` package domains (Intel, and AMD on kernels that expose
  RAPL there), wrap-around handled with ``max_energy_range_uj``. Since Linux 5.10 ``energy_uj`` is readable
  by root only; then CPU energy is n/a with that reason.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POWERCAP_ROOT = Path("/sys/class/powercap")
NA = "n/a"


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
class NvmlCounter:
    kind = "gpu"

    def __init__(self, device_index: int = 0):
        try:
            import pynvml
        except ImportError as exc:
            raise EnergyUnavailable("nvidia-ml-py (pynvml) is not installed") from exc
        self.nvml = pynvml
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            if device_index >= count:
                raise EnergyUnavailable(f"NVML sees {count} GPU(s), no device {device_index}")
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            self.name = pynvml.nvmlDeviceGetName(self.handle)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        except pynvml.NVMLError as exc:
            raise EnergyUnavailable(f"NVML: {exc} (no NVIDIA driver/GPU, or a GPU older than Volta)") from exc
        self.device_index = device_index

    def read(self) -> list[int]:
        return [int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))]  # mJ

    def joules(self, before: list[int], after: list[int]) -> float:
        return (after[0] - before[0]) / 1e3

    def describe(self) -> dict[str, Any]:
        name = self.name.decode() if isinstance(self.name, bytes) else str(self.name)
        return {"counter": "nvmlDeviceGetTotalEnergyConsumption", "device_index": self.device_index, "gpu": name}


def counters_for(device: str, powercap_root: str | Path = POWERCAP_ROOT) -> dict[str, Any]:
    """``{"cpu": counter or reason, "gpu": counter or reason}`` for a platform device."""
    out: dict[str, Any] = {}
    try:
        out["cpu"] = RaplCounter(powercap_root)
    except EnergyUnavailable as exc:
        out["cpu"] = str(exc)
    if device.startswith("cuda"):
        try:
            out["gpu"] = NvmlCounter(int(device.split(":")[1]) if ":" in device else 0)
        except EnergyUnavailable as exc:
            out["gpu"] = str(exc)
    else:
        out["gpu"] = "no GPU on this platform"
    return out


# -- measurement --------------------------------------------------------------------------------------------------
def measure(
    step: Callable[[], None],
    sync: Callable[[], None],
    counters: dict[str, Any],
    *,
    inferences: int,
    repeats: int,
    idle_s: float,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Idle power, then ``repeats`` blocks of ``inferences`` calls of ``step``; one record per counter kind."""
    live = {k: c for k, c in counters.items() if not isinstance(c, str)}
    out: dict[str, Any] = {k: {"status": NA, "reason": c} for k, c in counters.items() if isinstance(c, str)}
    if not live:
        return out
    sync()
    start = {k: c.read() for k, c in live.items()}
    t0 = clock()
    sleep(idle_s)
    t_idle = clock() - t0
    idle_w = {k: c.joules(start[k], c.read()) / t_idle for k, c in live.items()}
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
        }
    return out
