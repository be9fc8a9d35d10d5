"""NVAE's spectral regularisation ``sum_layers sigma_max(W)`` and BN-scale term ``sum max|gamma|``.

Every ``nn.Conv2d`` / ``nn.Linear`` weight is read as a 2-D matrix ``(out, in * kh * kw)`` and
its largest singular value is estimated by power iteration. The singular-vector estimates
``(u, v)`` persist between calls in a :class:`PowerIteration` (a plain dict keyed by module name,
stored on the model as ``_power_iteration``; moved to the weight's device on use): a weight seen
for the first time gets ``init_iters`` (NVAE: 10) iterations from a random start, afterwards
``n_iters`` (NVAE: 1) per call with ``update=True`` whenever the weight has changed since its
last iterations (``Tensor._version``: every optimizer step), i.e. once per training step. The
iterations run without gradient; ``sigma = u^T W v`` is differentiable in ``W``, which is the
gradient NVAE uses. So the state does not depend on how often the loss is computed: a second
loss of the same step (an adversarial trick) and evaluation (``update=False``) only read it.

Scope: every Conv2d AND every Linear, so the squeeze-and-excitation Linears of the cells are in
the sum too. NVIDIA's NVAE collects its convolution layers (its SE blocks are Linear), as far as
we read it: if so, this sum has a few more, small terms than the paper's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_STATE_ATTR = "_power_iteration"


def weight_2d(weight: Tensor) -> Tensor:
    """``(out, ...)`` -> ``(out, prod(...))``."""
    return weight.reshape(weight.shape[0], -1)


class PowerIteration:
    """Persistent ``(u, v)`` estimates per weight name."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[Tensor, Tensor]] = {}
        self.versions: dict[str, int] = {}   # weight version at the last kept iterations

    def sigma(self, name: str, w: Tensor, n_iters: int = 1, init_iters: int = 10,
              update: bool = True) -> Tensor:
        """``sigma_max`` of a 2-D ``w`` (differentiable in ``w``). ``update``: when ``w`` changed
        since its last kept iterations, run ``n_iters`` more and keep them; otherwise (or with
        ``update=False``) use the kept ``(u, v)`` as they are. A weight not seen yet gets
        ``init_iters`` iterations, kept only with ``update``."""
        with torch.no_grad():
            wd = w.detach()
            if name not in self.state or self.state[name][0].shape[0] != wd.shape[0]:
                u = F.normalize(torch.randn(wd.shape[0], device=wd.device, dtype=wd.dtype), dim=0)
                v = F.normalize(torch.randn(wd.shape[1], device=wd.device, dtype=wd.dtype), dim=0)
                iters = init_iters
            else:
                u, v = (t.to(device=wd.device, dtype=wd.dtype) for t in self.state[name])
                iters = n_iters if update and self.versions.get(name) != w._version else 0
            for _ in range(iters):
                v = F.normalize(wd.t() @ u, dim=0, eps=1e-12)  # (in,)
                u = F.normalize(wd @ v, dim=0, eps=1e-12)      # (out,)
            if update:
                self.state[name] = (u, v)
                self.versions[name] = w._version
        return u @ w @ v


def _state_of(model: nn.Module) -> PowerIteration:
    state = model.__dict__.get(_STATE_ATTR)
    if state is None:
        state = PowerIteration()
        model.__dict__[_STATE_ATTR] = state
    return state


def spectral_loss(model: nn.Module, n_iters: int = 1, init_iters: int = 10,
                  state: PowerIteration | None = None, update: bool = True) -> Tensor:
    """``sum sigma_max(W)`` over every Conv2d / Linear weight of ``model`` (scalar tensor).

    Args:
        model: The network (its power-iteration state is kept on it unless ``state`` is given).
        n_iters: Power iterations per call for weights already seen.
        init_iters: Iterations for a weight seen for the first time.
        state: Explicit state (tests); default ``model._power_iteration``.
        update: Advance and keep the estimates (once per training step); False reads them.
    """
    state = state or _state_of(model)
    terms = [state.sigma(name, weight_2d(m.weight), n_iters, init_iters, update)
             for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()


def bn_loss(model: nn.Module) -> Tensor:
    """``sum max|gamma|`` over every affine BatchNorm of ``model`` (scalar tensor)."""
    terms = [m.weight.abs().max() for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()
