"""build_trainer's cached entry-point scan: Lightning's external callbacks still arrive, fresh
per Trainer, exactly as an unpatched ``L.Trainer`` gets them; only the scan is done once."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import lightning as L
import pytest
from lightning.fabric.utilities import registry

from kexue.training import entry_points
from kexue.training.config import TrainerConfig
from kexue.training.trainer import build_trainer

GROUP = "lightning.pytorch.callbacks_factory"


@pytest.fixture
def external_callback(tmp_path, monkeypatch):
    """A real installed distribution (a dist-info on ``sys.path``) whose entry point in
    Lightning's group returns a fresh ``KexueProbe`` callback each call."""
    (tmp_path / "kexue_probe_ext.py").write_text(textwrap.dedent("""
        import lightning as L

        class KexueProbe(L.Callback):
            pass

        def make():
            return [KexueProbe()]
    """))
    info = tmp_path / "kexue_probe_ext-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kexue-probe-ext\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nprobe = kexue_probe_ext:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_points.clear_entry_point_cache()
    yield
    entry_points.clear_entry_point_cache()
    sys.modules.pop("kexue_probe_ext", None)


def _names(trainer: L.Trainer) -> list[str]:
    return [type(cb).__name__ for cb in trainer.callbacks]


def test_external_callbacks_arrive_fresh_per_trainer_and_the_scan_runs_once(
        external_callback) -> None:
    cfg = TrainerConfig(max_epochs=1, accelerator="cpu")
    first, second = build_trainer(cfg), build_trainer(cfg)
    probes = [cb for t in (first, second) for cb in t.callbacks if type(cb).__name__ == "KexueProbe"]
    assert len(probes) == 2 and probes[0] is not probes[1]  # the factory ran for each Trainer
    memo = entry_points._group.cache_info()
    assert (memo.misses, memo.hits) == (1, 1)  # ... but the installed packages were scanned once
    # the same callbacks, in the same order, as Lightning's own unpatched construction
    plain = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_model_summary=False, enable_progress_bar=False)
    assert _names(first) == _names(plain) and "KexueProbe" in _names(plain)
    # the swap is scoped to the construction
    assert registry.entry_points is importlib.metadata.entry_points


def test_swap_is_undone_when_the_trainer_cannot_be_built() -> None:
    with pytest.raises(Exception):
        build_trainer(TrainerConfig(max_epochs=1, accelerator="cpu"), accelerator="no-such-device")
    assert registry.entry_points is importlib.metadata.entry_points


def test_other_entry_point_calls_pass_through() -> None:
    """Only the ``group=`` lookup is memoised; a call with other arguments is the real scan."""
    with entry_points.cached_entry_point_scan():
        assert registry.entry_points(group=GROUP) is registry.entry_points(group=GROUP)
        by_name = registry.entry_points(group="console_scripts", name="pytest")
        assert list(by_name) == list(importlib.metadata.entry_points(group="console_scripts",
                                                                      name="pytest"))


def test_someone_elses_patch_is_left_alone(monkeypatch) -> None:
    """A registry ``entry_points`` already replaced (a test's mock) is neither memoised over nor
    restored to the real scan."""
    calls = []

    def fake(**params):
        calls.append(params)
        return importlib.metadata.EntryPoints(())

    monkeypatch.setattr(registry, "entry_points", fake)
    build_trainer(TrainerConfig(max_epochs=1, accelerator="cpu"))
    assert calls == [{"group": GROUP}] and registry.entry_points is fake
