"""The uprobe PMU's semaphore field: where ``ref_ctr_offset`` goes in ``perf_event_attr``."""

from __future__ import annotations

from bpfnb.link import probes


def test_ref_ctr_shift_read_from_the_pmu_format(tmp_path, monkeypatch) -> None:
    fmt = tmp_path / "uprobe" / "format"
    fmt.mkdir(parents=True)
    monkeypatch.setattr(probes, "PMU_DIR", str(tmp_path))
    assert probes.ref_ctr_shift("uprobe") is None  # no field: the kernel predates semaphores
    (fmt / "ref_ctr_offset").write_text("config:40-63\n")
    assert probes.ref_ctr_shift("uprobe") == 40
    (fmt / "ref_ctr_offset").write_text("garbage\n")
    assert probes.ref_ctr_shift("uprobe") == probes.REF_CTR_SHIFT == 32


def test_open_pmu_probe_puts_the_semaphore_offset_above_the_retprobe_bit(monkeypatch) -> None:
    seen = {}

    def fake_open(attr, pid=-1, cpu=0):
        seen.update(config=attr.config, config2=attr.config2, pid=pid, cpu=cpu)
        return "fd"

    monkeypatch.setattr(probes.perf, "perf_event_open", fake_open)
    monkeypatch.setattr(probes, "ref_ctr_shift", lambda kind="uprobe": 32)
    monkeypatch.setattr(probes, "retprobe_bit", lambda kind: 0)
    assert probes.open_pmu_probe(9, "uprobe", True, "/bin/x", 0x1234, ref_ctr_offset=0x3A) == "fd"
    assert seen == {"config": (0x3A << 32) | 1, "config2": 0x1234, "pid": -1, "cpu": 0}
