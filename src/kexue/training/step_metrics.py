"""Training-step metrics buffered on the device and handed to ``self.log`` in windows.

``LightningModule.log`` costs about 0.3 ms of Python per call on CPU (metadata objects, a
``to(device)`` walk over the stored metric, a clone for ``on_step``); two calls per micro-batch
were half of the framework overhead of a batch-1 fit (``bench/bench_framework_overhead.py``).
:class:`StepMetricBuffer` keeps each micro-batch's detached value and sample count instead (no
host sync, no copy) and logs ONE value per metric when a window closes: the sample-weighted mean
of the window, with ``batch_size`` = the window's samples. Lightning's epoch value is the
sample-weighted mean of what is logged, so it equals the per-micro-batch mean over the epoch
(up to float rounding); ``*_step`` is the mean since the previous flush (Lightning sends step
values to loggers only every ``log_every_n_steps`` steps anyway).

A window closes after every ``trainer.log_every_n_steps``-th optimizer step and whenever the
epoch or the fit may end after this batch: last batch of the epoch, ``max_steps`` reached,
``trainer.should_stop`` -- so callbacks' ``on_train_epoch_end`` (e.g.
:class:`kexue.training.history.EpochMetrics`) and ``trainer.callback_metrics`` after the fit see
every micro-batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch


class StepMetricBuffer:
    """Per-metric lists of ``(value, samples)`` since the last flush."""

    def __init__(self) -> None:
        self._values: dict[str, list[torch.Tensor]] = {}
        self._samples: dict[str, list[int]] = {}
        self._flushed_step = -1

    def add(self, name: str, value: torch.Tensor, samples: int) -> None:
        """Remember ``value`` of a micro-batch of ``samples`` samples: a 0-d batch mean, or a
        ``(samples,)`` vector of per-sample values (averaged here, once per window)."""
        if value.requires_grad:
            value = value.detach()
        if value.dim() > 0 and value.numel() == 1:
            value = value.reshape(())                  # a (1,) batch mean is a scalar
        elif value.dim() > 0 and (value.dim() != 1 or value.numel() != samples):
            raise ValueError(f"metric {name!r} has shape {tuple(value.shape)}: return a 0-d batch "
                             f"mean or one value per sample ({samples},)")
        self._values.setdefault(name, []).append(value)
        self._samples.setdefault(name, []).append(int(samples))

    def __len__(self) -> int:
        return sum(len(v) for v in self._values.values())

    def clear(self) -> None:
        """Forget everything buffered (a new fit or epoch starts)."""
        self._values.clear()
        self._samples.clear()

    def window_means(self) -> dict[str, tuple[torch.Tensor, int]]:
        """``name -> (sample-weighted mean, samples)`` of the buffered micro-batches; clears."""
        out: dict[str, tuple[torch.Tensor, int]] = {}
        for name, values in self._values.items():
            samples = self._samples[name]
            total = sum(samples)
            if any(v.dim() == 1 for v in values):     # per-sample values: one mean
                flat = torch.cat([v if v.dim() == 1 else v.reshape(1).expand(n)
                                  for v, n in zip(values, samples, strict=True)])
                out[name] = (flat.to(torch.promote_types(flat.dtype, torch.float32)).mean(), total)
                continue
            if len(values) == 1:
                out[name] = (values[0], total)
                continue
            stacked = torch.stack(values).to(torch.promote_types(values[0].dtype, torch.float32))
            weights = torch.tensor(samples, dtype=stacked.dtype).to(stacked.device,
                                                                    non_blocking=True)
            out[name] = ((stacked * weights).sum() / max(total, 1), total)
        self.clear()
        return out

    def due(self, trainer: L.Trainer) -> bool:
        """Whether the window must close after the current training batch (see module doc)."""
        loop = trainer.fit_loop.epoch_loop
        step = int(trainer.global_step)
        if loop.batch_progress.is_last_batch or trainer.should_stop:
            return True
        if 0 < trainer.max_steps <= step:
            return True
        every = max(1, int(trainer.log_every_n_steps))
        if step != self._flushed_step and step > 0 and step % every == 0:
            return True
        return False

    def flush(self, log: Callable[..., Any], trainer: L.Trainer, prefix: str) -> None:
        """``log(prefix/name, mean, batch_size=samples, ...)`` for every buffered metric.

        ``log`` is the module's ``self.log``; ``loss`` is logged on step and epoch (as before the
        buffering), other metrics on epoch only.
        """
        self._flushed_step = int(trainer.global_step)
        for name, (mean, samples) in self.window_means().items():
            log(f"{prefix}/{name}", mean, batch_size=samples, prog_bar=False,
                on_step=name == "loss", on_epoch=True)
