"""Energy readers against a fake powercap tree and NVML mocked at the library boundary (pynvml's own
functions, returning what the real ones return: ints in mJ / mW, str names, NVMLError on failure)."""

import pytest

from ngbench import energy


def _zone(root, name, index, energy_uj, max_range=262143328850):
    z = root / f"intel-rapl:{index}"
    z.mkdir(parents=True)
    (z / "name").write_text(f"{name}\n")
    (z / "energy_uj").write_text(f"{energy_uj}\n")
    (z / "max_energy_range_uj").write_text(f"{max_range}\n")
    return z


def test_rapl_reads_package_domains_only(tmp_path):
    _zone(tmp_path, "package-0", 0, 1000)
    _zone(tmp_path, "package-1", 1, 2000)
    sub = tmp_path / "intel-rapl:0:0"  # a sub-zone (core): inside package-0, not counted twice
    sub.mkdir()
    (sub / "name").write_text("core\n")
    counter = energy.RaplCounter(tmp_path)
    assert [d.name for d in counter.domains] == ["package-0", "package-1"]
    assert counter.read() == [1000, 2000]


def test_rapl_wraparound():
    assert energy.rapl_delta_uj(100, 350, 1000) == 250
    assert energy.rapl_delta_uj(900, 50, 1000) == 150  # wrapped: 100 to the top, then 50


def test_rapl_unavailable_says_why(tmp_path):
    with pytest.raises(energy.EnergyUnavailable, match="no .*powercap"):
        energy.RaplCounter(tmp_path / "absent")
    z = _zone(tmp_path, "package-0", 0, 1)
    (z / "energy_uj").unlink()
    (z / "energy_uj").mkdir()  # unreadable as a file, like a root-only counter is for a user
    with pytest.raises(energy.EnergyUnavailable, match="not readable"):
        energy.RaplCounter(tmp_path)


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def test_measure_with_a_ticking_rapl_counter(tmp_path):
    """Package draws 10 W idle; each inference takes 0.1 s and costs 5 J in total (3 J above idle).
    The counter starts near its wrap point so the blocks cross it."""
    max_range = 50_000_000
    z = _zone(tmp_path, "package-0", 0, max_range - 4_000_000, max_range)
    clock = FakeClock()
    state = {"uj": max_range - 4_000_000}

    def advance(seconds, joules):
        clock.t += seconds
        state["uj"] = (state["uj"] + int(joules * 1e6)) % max_range
        (z / "energy_uj").write_text(str(state["uj"]))

    def sleep(s):
        advance(s, 10.0 * s)

    counters = {"cpu": energy.RaplCounter(tmp_path), "gpu": "no GPU on this platform"}
    out = energy.measure(
        lambda: advance(0.1, 5.0), lambda: None, counters, inferences=4, repeats=3, idle_s=2.0, clock=clock, sleep=sleep
    )
    cpu = out["cpu"]
    assert cpu["status"] == "ok" and cpu["idle_power_w"] == pytest.approx(10.0)
    assert cpu["joules_per_inference_median"] == pytest.approx(5.0)
    assert cpu["joules_per_inference_above_idle_median"] == pytest.approx(4.0)  # 5 J - 10 W x 0.1 s
    assert len(cpu["samples_j_per_inference"]) == 3
    assert out["gpu"] == {"status": "n/a", "reason": "no GPU on this platform"}


def test_nvml_counter_and_measure(monkeypatch):
    import pynvml  # nvidia-ml-py, a requirement: the mocks replace its functions, not the module

    state = {"mj": 123_456, "inits": 0}
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: state.__setitem__("inits", state["inits"] + 1))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: 2)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: f"handle-{i}")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetName", lambda h: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetTotalEnergyConsumption", lambda h: state["mj"])
    clock = FakeClock()

    def sleep(s):  # 60 W idle
        clock.t += s
        state["mj"] += int(60_000 * s)

    def infer():  # 0.01 s at 300 W = 3 J
        clock.t += 0.01
        state["mj"] += 3_000

    counter = energy.NvmlCounter(1)
    out = energy.measure(
        infer, lambda: None, {"gpu": counter}, inferences=10, repeats=2, idle_s=1.0, clock=clock, sleep=sleep
    )
    gpu = out["gpu"]
    assert gpu["gpu"] == "NVIDIA H100 80GB HBM3" and gpu["device_index"] == 1
    assert gpu["idle_power_w"] == pytest.approx(60.0) and gpu["joules_per_inference_median"] == pytest.approx(3.0)
    assert gpu["joules_per_inference_above_idle_median"] == pytest.approx(3.0 - 0.6)
    with pytest.raises(energy.EnergyUnavailable, match="no device 5"):
        energy.NvmlCounter(5)


def test_nvml_error_is_na_with_the_reason(monkeypatch):
    import pynvml  # nvidia-ml-py, a requirement: the mocks replace its functions, not the module

    def fail():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    monkeypatch.setattr(pynvml, "nvmlInit", fail)
    counters = energy.counters_for("cuda:0", powercap_root="/nonexistent")
    assert "NVML" in counters["gpu"] and "powercap" in counters["cpu"]
    out = energy.measure(lambda: None, lambda: None, counters, inferences=1, repeats=1, idle_s=0)
    assert out["gpu"]["status"] == "n/a" and out["cpu"]["status"] == "n/a"


def test_energy_job_on_a_machine_without_counters_builds_nothing(tmp_path, monkeypatch):
    from ngbench import registry
    from ngbench.jobs import direct

    monkeypatch.setattr(registry, "build", lambda *a, **k: pytest.fail("built a model with no counter to read"))
    config = {
        "platforms": {"cpu": {"device": "cpu"}},
        "models": {"swin-t": None},
        "energy": {"powercap_root": str(tmp_path / "none")},
    }
    rec = direct.measure_energy(config, "cpu", "swin-t", 1, str(tmp_path / "in.pt"), str(tmp_path / "e.json"))
    assert rec["status"] == "ok" and rec["cpu"]["status"] == "n/a" and rec["gpu"]["reason"] == "no GPU on this platform"


def test_nvml_handle_by_the_cuda_devices_pci_bus_id(monkeypatch):
    """With CUDA_VISIBLE_DEVICES=3, CUDA ordinal 0 is the machine's fourth GPU: NVML must read that one,
    found by PCI bus id, not NVML index 0."""
    import pynvml

    asked = {}
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: pytest.fail("NVML index used"))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByPciBusId", lambda bus: asked.setdefault("bus", bus))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetName", lambda h: "NVIDIA H200")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetTotalEnergyConsumption", lambda h: 1)
    bus = energy.pci_bus_id(0, 0x3B, 0)  # what torch.cuda.get_device_properties(0) reports for it
    assert bus == "00000000:3B:00.0"
    counters = energy.counters_for("cuda:0", powercap_root="/nonexistent", gpu_pci_bus_id=bus)
    assert asked["bus"] == bus and counters["gpu"].describe()["pci_bus_id"] == bus


def test_blocks_last_long_enough_for_the_counters_resolution(monkeypatch):
    """An NVML-like counter that updates every 50 ms; 5 ms inferences at 200 W. Asked for 10 inferences per
    block (50 ms, one update) with min_block_s=1: blocks grow to 200 inferences (1 s, ~20 updates)."""
    out = _nvml_blocks(monkeypatch, period_ms=50, min_block_s=1.0)
    assert out["counter_resolution"]["update_interval_s"] == pytest.approx(0.05, abs=0.003)
    assert out["inferences_per_block"] == 200 and min(out["seconds_per_block"]) >= 1.0 - 1e-9
    assert out["counter_updates_per_block"] == pytest.approx(20, rel=0.1)
    assert out["joules_per_inference_median"] == pytest.approx(1.0, rel=0.06)  # 5 ms x 200 W, +-1 update


def test_a_slow_counter_lengthens_blocks_past_min_block_s(monkeypatch):
    """The GPU smoke's 1 s blocks and a counter updating every 100 ms: 10 updates a block, half the time
    fewer. Blocks grow to energy.UPDATES_PER_BLOCK updates (2 s) whatever min_block_s says."""
    out = _nvml_blocks(monkeypatch, period_ms=100, min_block_s=1.0)
    assert out["counter_resolution"]["update_interval_s"] == pytest.approx(0.1, abs=0.005)
    assert min(out["seconds_per_block"]) >= 2.0 * 0.95 and out["counter_updates_per_block"] >= 19


def _nvml_blocks(monkeypatch, period_ms: int, min_block_s: float) -> dict:
    import pynvml

    clock = FakeClock()
    state = {"energy_mj": 0.0, "shown": 0}

    def tick(seconds, watts):
        for _ in range(round(seconds / 0.001)):  # 1 ms steps; the counter shows a new value every 50 ms
            clock.t += 0.001
            state["energy_mj"] += watts
            if round(clock.t * 1000) % period_ms == 0:
                state["shown"] = int(state["energy_mj"])

    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: 1)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: "h")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetName", lambda h: "GPU")
    monkeypatch.setattr(pynvml, "nvmlDeviceGetTotalEnergyConsumption", lambda h: state["shown"])
    out = energy.measure(
        lambda: tick(0.005, 200.0),
        lambda: None,
        {"gpu": energy.NvmlCounter(0)},
        inferences=10,
        repeats=3,
        idle_s=0.5,
        min_block_s=min_block_s,
        resolution_s=1.0,
        clock=clock,
        sleep=lambda s: tick(s, 50.0),
    )["gpu"]
    return out


def test_a_failing_gpu_lookup_is_the_energy_records_failure_not_a_crash(tmp_path, monkeypatch):
    """An older torch without the PCI attributes raises in the bus-id lookup: the record says failed, why."""
    from ngbench.jobs import direct
    from ngbench.jobs import energy as energy_job

    def no_pci(device):
        raise AttributeError("'torch._C._CudaDeviceProperties' object has no attribute 'pci_bus_id'")

    monkeypatch.setattr(energy_job, "_cuda_pci_bus_id", no_pci)
    config = {"platforms": {"gpu": {"device": "cuda"}}, "models": {"swin-t": None}}
    rec = direct.measure_energy(config, "gpu", "swin-t", 1, str(tmp_path / "in.pt"), str(tmp_path / "e.json"))
    assert rec["status"] == "failed" and "pci_bus_id" in rec["reason"]
