"""Nearest-neighbour vector quantiser with a straight-through gradient, EMA codebook updates
and dead-code restarts (VQ-VAE, van den Oord et al. 2017; Su's post 6760).

Per spatial position ``k = argmin_j ||z - e_j||^2`` with the distance expanded as
``||z||^2 + ||e_j||^2 - 2 z.e_j``, always computed in fp32 (autocast disabled): low-precision
distances and EMA statistics are a known source of NaN/inf (rosinality/vq-vae-2-pytorch#65).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class QuantizerOutput:
    """What :meth:`VectorQuantizer.forward` returns.

    Attributes:
        z_q_st: Straight-through ``z + sg[z_q - z]`` (value z_q, gradient to z). (B, d, H, W)
        z_q: Selected codebook vectors (gradient to the codebook iff ``ema=False``). (B, d, H, W)
        indices: Selected code ids, int64. (B, H, W)
        codebook_loss: ``mean((sg[z] - z_q)^2)``; a constant 0 when the codebook is EMA-updated.
        commitment_loss: ``mean((z - sg[z_q])^2)`` (unweighted; the caller multiplies by beta).
        perplexity: ``exp(-sum p log p)`` of this batch's code histogram.
        counts: Assignments per code in this batch (float). (K,)
    """

    z_q_st: Tensor
    z_q: Tensor
    indices: Tensor
    codebook_loss: Tensor
    commitment_loss: Tensor
    perplexity: Tensor
    counts: Tensor


def perplexity_of(counts: Tensor) -> Tensor:
    """``exp(entropy)`` of a histogram ``counts`` (K,); empty bins contribute 0."""
    p = counts.float() / counts.float().sum().clamp_min(1e-12)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


class VectorQuantizer(nn.Module):
    """Codebook ``embedding`` (K, d) with nearest-neighbour assignment.

    With ``ema=True`` the codebook is a buffer updated once per optimizer step (paper
    appendix A.1, Laplace smoothing as in the DeepMind Sonnet / zalando reference), with ``n_i``
    the batch count and ``s_i`` the sum of the batch's z assigned to code i::

        N_i <- decay * N_i + (1 - decay) * n_i                 (buffer ema_count, unsmoothed)
        m_i <- decay * m_i + (1 - decay) * s_i                 (buffer ema_sum)
        n   =  sum_j N_j
        Ñ_i =  (N_i + eps) / (n + K * eps) * n                 (Laplace smoothing)
        e_i =  m_i / Ñ_i

    The state starts at ``N_i = 1, m_i = e_i`` (consistent: e = m / N). Only the division uses
    the smoothed Ñ; the stored N stays unsmoothed (as in Sonnet and lucidrains'
    vector-quantize-pytorch; zalando's notebook writes Ñ back into its buffer, which differs by
    O(eps) per step).
    With ``ema=False`` the codebook is an ``nn.Parameter`` trained by ``codebook_loss``.

    When: :meth:`forward` changes no state. In training mode it keeps the statistics of each
    micro-batch's FIRST training forward (``pending``; :meth:`new_micro_batch` opens the next
    one), and :meth:`apply_pending` -- called by the LightningModule once per optimizer step
    (``on_before_optimizer_step``) -- applies the window's statistics as ONE update: EMA step
    from the summed counts and sums, usage counters, dead-code restarts, ``last_counts``. So a
    loss computed twice in one micro-batch (an adversarial trick's second forward) updates the
    codebook once, from the clean forward, and k accumulated micro-batches of b update it
    exactly as one batch of k*b would (every micro-batch of the window is quantised against the
    same codebook, as the big batch is). The update needs nothing the backward reads (the EMA
    codebook is a buffer and ``z_q`` a fresh tensor), so applying it after the backward equals
    applying it in the forward.

    Dead codes: ``steps_unused`` counts consecutive optimizer steps in which a code got no
    assignment; when it reaches ``dead_code_steps`` (> 0) the code is re-initialised from a random
    encoder output of the current batch (``N_i = 1, m_i = e_i``, counter 0; ``restarts`` counts
    them). Randomness uses the global torch RNG on the module's device.

    Distributed training: the EMA statistics are *not* all-reduced. Under DDP (which broadcasts
    buffers from rank 0 before each forward by default) the codebook follows rank 0's batches.

    Args:
        codebook_size: K.
        code_dim: d.
        ema: EMA codebook (True) or gradient-trained codebook (False).
        decay: EMA decay (paper: 0.99).
        eps: Laplace smoothing constant.
        dead_code_steps: Consecutive unused training steps before a restart (0 = never).
    """

    def __init__(self, codebook_size: int, code_dim: int, ema: bool = True, decay: float = 0.99,
                 eps: float = 1e-5, dead_code_steps: int = 100) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.code_dim = code_dim
        self.ema = ema
        self.decay = decay
        self.eps = eps
        self.dead_code_steps = dead_code_steps
        # U(-1/K, 1/K) as in zalando's PyTorch VQ-VAE reference; Su's Keras
        # code uses 'uniform', i.e. U(-0.05, 0.05): about 3x wider at K = 64 (a deviation)
        init = torch.empty(codebook_size, code_dim).uniform_(-1.0 / codebook_size,
                                                              1.0 / codebook_size)  # (K, d)
        if ema:
            self.register_buffer("embedding", init)
            self.register_buffer("ema_count", torch.ones(codebook_size))     # (K,)
            self.register_buffer("ema_sum", init.clone())                    # (K, d)
        else:
            self.embedding = nn.Parameter(init)
        self.register_buffer("steps_unused", torch.zeros(codebook_size, dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))
        # Counts of the latest applied training step (read by the LightningModule).
        self.register_buffer("last_counts", torch.zeros(codebook_size), persistent=False)
        # (flat z, indices, counts) of each micro-batch's first training forward, not yet applied
        self.pending: list[tuple[Tensor, Tensor, Tensor]] = []
        self._micro_batch_taken = False

    def forward(self, z: Tensor) -> QuantizerOutput:
        """Quantise ``z`` (B, d, H, W). No state changes: in training mode the micro-batch's first
        forward keeps its statistics for :meth:`apply_pending`."""
        b, d, h, w = z.shape
        if d != self.code_dim:
            raise ValueError(f"z has {d} channels but code_dim={self.code_dim}")
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = z.permute(0, 2, 3, 1).reshape(-1, d).float()              # (N, d), N = B*H*W
            codebook = self.embedding.float()                                # (K, d)
            with torch.no_grad():
                dist = (flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1)
                        - 2.0 * flat @ codebook.t())                         # (N, K)
                idx = dist.argmin(dim=1)                                     # (N,)
                counts = torch.bincount(idx, minlength=self.codebook_size).float()  # (K,)
            zq_flat = F.embedding(idx, codebook)                             # (N, d)
            z_q32 = zq_flat.view(b, h, w, d).permute(0, 3, 1, 2)             # (B, d, H, W)
            z32 = z.float()
            commitment = F.mse_loss(z32, z_q32.detach())
            if self.ema:
                codebook_loss = torch.zeros((), device=z.device)
            else:
                codebook_loss = F.mse_loss(z_q32, z32.detach())
            perplexity = perplexity_of(counts)
        z_q = z_q32.to(z.dtype)
        z_q_st = z + (z_q - z).detach()
        if self.training and not self._micro_batch_taken:
            self.pending.append((flat.detach(), idx, counts))
            self._micro_batch_taken = True
        return QuantizerOutput(z_q_st=z_q_st, z_q=z_q, indices=idx.view(b, h, w),
                               codebook_loss=codebook_loss, commitment_loss=commitment,
                               perplexity=perplexity, counts=counts)

    def new_micro_batch(self) -> None:
        """The next training forward starts a micro-batch: its statistics are kept."""
        self._micro_batch_taken = False

    @torch.no_grad()
    def apply_pending(self) -> bool:
        """Apply the kept micro-batches' statistics as one update (EMA step, usage counters,
        dead-code restarts, ``last_counts``); returns whether there were any."""
        if not self.pending:
            return False
        flats, idxs, counts_ = zip(*self.pending)
        self.pending = []
        self._micro_batch_taken = False
        flat, idx = torch.cat(flats), torch.cat(idxs)                        # (N, d), (N,)
        counts = torch.stack(counts_).sum(0)                                  # (K,)
        self.last_counts.copy_(counts)
        if self.ema:
            self._ema_update(flat, idx, counts)
        self._track_usage(counts)
        if self.dead_code_steps > 0:
            self.restart_dead_codes(flat)
        return True

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, idx: Tensor, counts: Tensor) -> None:
        """One EMA step (see the class docstring) from fp32 ``flat`` (N, d) and ``idx`` (N,)."""
        sums = torch.zeros_like(self.ema_sum).index_add_(0, idx, flat)       # (K, d)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1.0 - self.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.codebook_size * self.eps) * n  # (K,)
        self.embedding.copy_(self.ema_sum / smoothed.unsqueeze(1))

    @torch.no_grad()
    def _track_usage(self, counts: Tensor) -> None:
        """Consecutive-unused counters: +1 for codes with no assignment, 0 for used ones."""
        used = counts > 0
        self.steps_unused.copy_(torch.where(used, torch.zeros_like(self.steps_unused),
                                            self.steps_unused + 1))

    @torch.no_grad()
    def restart_dead_codes(self, flat_z: Tensor) -> Tensor:
        """Re-initialise every code with ``steps_unused >= dead_code_steps`` from ``flat_z``.

        Args:
            flat_z: Encoder outputs of the batch, flattened. (N, d)

        Returns:
            The restarted code ids (int64, ascending; empty when none was dead).
        """
        if self.dead_code_steps <= 0:
            return torch.zeros(0, dtype=torch.long, device=flat_z.device)
        dead = torch.nonzero(self.steps_unused >= self.dead_code_steps).flatten()  # (n_dead,)
        if dead.numel() == 0:
            return dead
        rows = torch.randint(0, flat_z.shape[0], (dead.numel(),), device=flat_z.device)
        new = flat_z[rows].to(self.embedding.dtype)                          # (n_dead, d)
        self.embedding.data[dead] = new
        if self.ema:
            self.ema_count[dead] = 1.0
            self.ema_sum[dead] = new
        self.steps_unused[dead] = 0
        self.restarts += dead.numel()
        return dead

    def lookup(self, indices: Tensor) -> Tensor:
        """Codebook vectors of ``indices`` (B, H, W) as a feature map (B, d, H, W)."""
        return F.embedding(indices.long(), self.embedding).permute(0, 3, 1, 2).contiguous()
