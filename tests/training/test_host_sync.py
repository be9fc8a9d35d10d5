"""No host synchronisation per step in the trick callbacks, the module's step and masked layers.

``torch.cuda.set_sync_debug_mode`` needs a GPU; on the CPU we record every call of the Tensor
methods that read a value back to the host (``item``, ``tolist``, ``cpu``, ``numpy``,
``__bool__``, ``__float__``, ``__int__``) together with the file of the Python caller, during a
whole fit. Calls from the training hot paths (``kexue/training`` step code, ``kexue/nn``) must
not happen per micro-batch. Each test also shows that the probe sees such calls where they are
expected, so an empty record is not just a broken probe.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.utils._pytree as pytree
from torch.overrides import TorchFunctionMode
from torch.utils.data import DataLoader, TensorDataset

from kexue.nn import AlignedBiLSTM, lengths_to_mask
from kexue.training.config import AdversarialConfig, EMAConfig, OptimizerConfig, TrainerConfig
from kexue.training.trainer import build_trainer
from tests.training.test_accumulation import Weighted, _weighted_data
from tests.training.test_adversarial import TinyText, _data

SYNCING = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")
SRC = Path(__file__).resolve().parents[2] / "src" / "kexue"


class SyncProbe:
    """Counts host-reading Tensor calls by (caller file relative to src/kexue, method)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        for name in SYNCING:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._wrap(name, original))

    def _wrap(self, name: str, original):
        def probe(tensor, *args, **kwargs):
            caller = Path(sys._getframe(1).f_code.co_filename).resolve()
            if caller.is_relative_to(SRC):
                self.calls[(str(caller.relative_to(SRC)), name)] += 1
            return original(tensor, *args, **kwargs)
        return probe

    def from_files(self, *names: str) -> dict[tuple[str, str], int]:
        return {key: n for key, n in self.calls.items() if key[0] in names}


HOT = ("training/adversarial.py", "training/gradient_penalty.py", "training/accumulation.py",
       "training/module.py", "training/step_metrics.py", "training/ema.py", "training/loss.py")


@pytest.mark.parametrize("method", ["fgm", "gp"])
def test_trick_callbacks_read_nothing_back_per_step(method: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """FGM / GP + exact accumulation + EMA, 8 micro-batches: no host read in their step code."""
    model = TinyText(OptimizerConfig(name="sgd", lr=0.1))
    cfg = TrainerConfig(max_epochs=1, accumulate_grad_batches=2, accelerator="cpu",
                        limit_val_batches=0)
    adv = AdversarialConfig(method=method, epsilon=0.5, embedding="encoder.tok")
    trainer = build_trainer(cfg, adv, EMAConfig(decay=0.9))
    probe = SyncProbe(monkeypatch)
    trainer.fit(model, DataLoader(_data(16), batch_size=2))
    assert trainer.global_step == 4
    assert probe.from_files(*HOT) == {}
    # the probe works: reading the callbacks' statistics is a host read from adversarial.py
    (cb,) = [c for c in trainer.callbacks if type(c).__name__ in ("FGM", "GradientPenalty")]
    assert (cb.last_delta_norm if method == "fgm" else cb.last_penalty) > 0
    where = "training/adversarial.py" if method == "fgm" else "training/gradient_penalty.py"
    assert probe.from_files(where) == {(where, "__float__"): 1}


def test_on_device_loss_counts_are_checked_once_per_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tensor counts: compared on the host for the first micro-batch only, then on the device
    with one read per epoch -- and a mismatch in a later micro-batch still fails the fit."""
    x, y, w = _weighted_data(8)
    trainer = build_trainer(TrainerConfig(max_epochs=2, accumulate_grad_batches=2,
                                          accelerator="cpu", limit_val_batches=0))
    probe = SyncProbe(monkeypatch)
    trainer.fit(Weighted(OptimizerConfig(name="sgd")), DataLoader(TensorDataset(x, y, w),
                                                                  batch_size=2))
    # first micro-batch: float(tokens); then one bool(mismatch) per epoch (2 epochs)
    assert probe.from_files("training/module.py") == {("training/module.py", "__float__"): 1,
                                                      ("training/module.py", "__bool__"): 2}

    class WrongLater(Weighted):
        def loss_counts(self, batch):
            counts = super().loss_counts(batch)
            if float(batch[0][0, 0]) != float(x[0, 0]):         # not the first batch
                counts["tokens"] = counts["tokens"] + 1
            return counts

    trainer = build_trainer(TrainerConfig(max_epochs=1, accumulate_grad_batches=2,
                                          accelerator="cpu", limit_val_batches=0))
    with pytest.raises(RuntimeError, match="loss_counts.*epoch 0.*exact_accumulation: false"):
        trainer.fit(WrongLater(OptimizerConfig(name="sgd")), DataLoader(TensorDataset(x, y, w),
                                                                        batch_size=2))


class DeviceTaint(TorchFunctionMode):
    """Treats the given tensors as on-device: everything computed from them is too, and reading
    any of those back (``SYNCING`` methods) from ``src/kexue`` is recorded. Host tensors (the
    batch's lengths) and what is computed from them alone may be read freely."""

    def __init__(self, *device_tensors: torch.Tensor) -> None:
        super().__init__()
        self._alive = list(device_tensors)           # ids stay unique while we hold them
        self.tainted = {id(t) for t in device_tensors}
        self.reads: Counter[tuple[str, str]] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        leaves = [t for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        tainted = any(id(t) in self.tainted for t in leaves)
        name = getattr(func, "__name__", "")
        if tainted and name in SYNCING:
            caller = Path(sys._getframe(1).f_code.co_filename).resolve()
            if caller.is_relative_to(SRC):
                self.reads[(str(caller.relative_to(SRC)), name)] += 1
        out = func(*args, **kwargs)
        if tainted:
            for t in pytree.tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    self._alive.append(t)
                    self.tainted.add(id(t))
        return out


def test_aligned_bilstm_with_host_lengths_reads_nothing_back() -> None:
    torch.manual_seed(0)
    lstm = AlignedBiLSTM(3, 4)
    lengths = torch.tensor([4, 1, 0, 3])
    mask = lengths_to_mask(lengths, 5)
    x = torch.randn(4, 5, 3)
    expected = lstm(x, mask)
    with DeviceTaint(x, mask, *lstm.parameters()) as taint:
        out = lstm(x, mask, lengths=lengths)
    assert taint.reads == {}
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    with DeviceTaint(x, mask, *lstm.parameters()) as taint:
        lstm(x, mask)                                 # without host lengths: the mask is read
    assert taint.reads == {("nn/rnn.py", "cpu"): 1}


def test_aligned_bilstm_rejects_device_or_out_of_range_lengths() -> None:
    lstm = AlignedBiLSTM(3, 4)
    mask = lengths_to_mask(torch.tensor([2, 1]), 3)
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 3\]"):
        lstm(torch.randn(2, 3, 3), mask, lengths=torch.tensor([4, 1]))
    with pytest.raises(ValueError, match="CPU tensor of shape"):
        lstm(torch.randn(2, 3, 3), mask, lengths=torch.tensor([2, 1, 1]))
