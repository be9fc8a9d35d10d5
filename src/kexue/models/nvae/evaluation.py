"""Evaluation of NVAE-style models: the ELBO, the importance-weighted bound, BN re-estimation.

Every function works with any module exposing ``forward(x) -> NVAEOutput`` (``kl_per_group``,
``log_q``, ``log_p``), ``log_likelihood(params, x) -> (B,)`` and, for :func:`reestimate_bn`,
``sample(n, temperature)``. The bounds run without gradient in the model's current mode; call
``model.eval()`` first (after :func:`reestimate_bn` if the model is to be evaluated with sampled
BN statistics).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


@torch.no_grad()
def elbo(model: nn.Module, x: Tensor) -> Tensor:
    """``log p(x | z) - sum_g KL_g`` with one posterior sample, per image ``(B,)`` in nats."""
    out = model(x)
    return model.log_likelihood(out.params, x) - torch.stack(out.kl_per_group).sum(0)


@torch.no_grad()
def iw_log_likelihood(model: nn.Module, x: Tensor, k: int, chunk: int = 16) -> Tensor:
    """Importance-weighted bound ``logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log k``
    per image ``(B,)`` (Burda et al. 2016; NVAE's ``--num_iw_samples``).

    The ``k`` samples are drawn ``chunk`` at a time, as one forward pass over ``chunk`` copies of
    the batch, so memory grows with ``chunk * B`` and not with ``k``. ``k = 1`` is an unbiased
    estimate of the ELBO; the bound tightens (in expectation) as ``k`` grows.
    """
    b = x.shape[0]
    log_w: list[Tensor] = []
    done = 0
    while done < k:
        c = min(chunk, k - done)
        xr = x.repeat(c, *([1] * (x.dim() - 1)))                       # (c*B, ...)
        out = model(xr)
        lw = model.log_likelihood(out.params, xr) + out.log_p - out.log_q
        log_w.append(lw.reshape(c, b))
        done += c
    return torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k)


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def reestimate_bn(model: nn.Module, n_batches: int = 10, batch_size: int = 64,
                  temperature: float = 1.0) -> int:
    """Re-estimate the BatchNorm running statistics on generated samples (``--readjust_bn``).

    Runs ``n_batches`` calls of ``model.sample(batch_size, temperature)`` in train mode without
    gradient. Each BatchNorm that the sampling path runs has its running statistics reset and its
    momentum set to ``None`` (a cumulative average over the passes) just before its first use;
    BatchNorms that sampling never reaches (the encoder's) keep their statistics. Afterwards every
    momentum is restored and the model is left in eval mode. Parameters are untouched.

    Returns:
        The number of BatchNorm layers re-estimated.
    """
    bns = _batchnorms(model)
    momenta = [bn.momentum for bn in bns]
    touched: set[int] = set()

    def reset_on_first_use(bn: nn.Module, args: tuple) -> None:
        if id(bn) not in touched:
            touched.add(id(bn))
            bn.reset_running_stats()
            bn.momentum = None

    handles = [bn.register_forward_pre_hook(reset_on_first_use) for bn in bns]
    model.train()
    try:
        for _ in range(n_batches):
            model.sample(batch_size, temperature)
    finally:
        for h in handles:
            h.remove()
        for bn, mom in zip(bns, momenta):
            bn.momentum = mom
        model.eval()
    return len(touched)


def bits_per_dim(nats: Tensor | float, dims: int) -> Tensor | float:
    """``nats / (ln 2 * dims)`` (NVAE's bpd; MNIST uses ``dims = 784`` after the crop)."""
    return nats / (math.log(2.0) * dims)
