"""NVAE (Vahdat & Kautz 2020): a bottom-up encoder and a top-down decoder shared by inference and
generation, with multi-scale groups of Normal latents.

Layout for the defaults (28x28 padded to 32, width ``C=16``, 2 scales x 2 groups)::

    encoder  x (B,1,32,32) -> stem (C,32,32) -> pre [cell, down] (2C,16,16)
             scale 0 (16x16, 2C): group cells, group cells -> down -> scale 1 (8x8, 4C): ...
    decoder  prior_ftr0 (4C,8,8) + z_0 -> [cells, prior, posterior, z_i, combine] per group,
             an up cell between scales -> post [up, cell] (C,32,32) -> head -> crop to 28x28

The top group's prior is ``Normal(0, 0)`` (sigma 1.01, see :mod:`.distributions`) and its
posterior comes from ``enc0`` (ELU - Conv1x1 - ELU) of the last encoder feature. Every later group
``i`` takes its prior ``(mu_p, log_sig_p)`` from the top-down state ``s`` (:func:`dec_sampler`)
and its posterior from ``EncCombiner(enc_feature_i, s)`` (:func:`enc_sampler`), residual to the
prior when ``res_dist``. Groups are listed top (coarsest) first, as in NVAE's ``kl_all``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kexue.models.nvae.cells import DecCombiner, EncCombiner, dec_sampler, enc_sampler, make_cell
from kexue.models.nvae.config import NVAEConfig
from kexue.models.nvae.distributions import (
    Normal,
    likelihood_channels,
    likelihood_log_prob,
    likelihood_sample,
    residual_normal,
    std_normal_like,
)


@dataclass
class NVAEOutput:
    """Output of a VAE forward pass (NVAE or the baseline).

    Attributes:
        params: Likelihood parameters at the image size: Bernoulli logits ``(B, C, H, W)`` or
            mixture parameters ``(B, P, H, W)``.
        kl_per_group: One closed-form ``KL(q || p)`` per latent group, each ``(B,)`` (summed over
            the group's elements), top group first.
        log_q: ``sum_g log q(z_g | z_<g, x)`` of the sampled latents, ``(B,)``.
        log_p: ``sum_g log p(z_g | z_<g)`` of the same latents, ``(B,)``.
    """

    params: Tensor
    kl_per_group: list[Tensor]
    log_q: Tensor
    log_p: Tensor


def _sum(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)  # (B, ...) -> (B,)


class NVAE(nn.Module):
    """Hierarchical VAE of :class:`NVAEConfig` (inputs ``x`` in ``[0, 1]``, ``(B, C, S, S)``)."""

    def __init__(self, cfg: NVAEConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        c, lat, m = cfg.channels, cfg.latent_channels, cfg.bn_momentum
        pad = cfg.padded_size - cfg.image_size
        self.pad = (pad // 2, pad - pad // 2)
        width = [c * 2 ** (s + 1) for s in range(cfg.scales)]          # encoder scale s (fine=0)
        self.top_size = cfg.padded_size // 2 ** cfg.scales
        n = cfg.num_groups
        # decoder group i lives at encoder scale scales - 1 - i // groups_per_scale
        dec_w = [width[cfg.scales - 1 - i // cfg.groups_per_scale] for i in range(n)]

        def cells(kind: str, ch: int, k: int) -> nn.Sequential:
            return nn.Sequential(*[make_cell(kind, ch, ch, "none", cfg.se, m) for _ in range(k)])

        self.stem = nn.Conv2d(cfg.in_channels, c, 3, padding=1)
        self.pre = nn.Sequential(make_cell(cfg.enc_cell, c, c, "none", cfg.se, m),
                                 make_cell(cfg.enc_cell, c, width[0], "down", cfg.se, m))
        self.enc_groups = nn.ModuleList(
            cells(cfg.enc_cell, width[s], cfg.enc_cells_per_group)
            for s in range(cfg.scales) for _ in range(cfg.groups_per_scale))
        self.enc_down = nn.ModuleList(make_cell(cfg.enc_cell, width[s], width[s + 1], "down",
                                                cfg.se, m) for s in range(cfg.scales - 1))
        self.enc0 = nn.Sequential(nn.ELU(), nn.Conv2d(width[-1], width[-1], 1), nn.ELU())
        self.enc_combiners = nn.ModuleList(EncCombiner(dec_w[i], dec_w[i]) for i in range(1, n))
        self.enc_samplers = nn.ModuleList(enc_sampler(dec_w[i], lat) for i in range(n))
        self.dec_samplers = nn.ModuleList(dec_sampler(dec_w[i], lat) for i in range(1, n))
        self.dec_groups = nn.ModuleList(cells(cfg.dec_cell, dec_w[i], cfg.dec_cells_per_group)
                                        for i in range(1, n))
        self.dec_combiners = nn.ModuleList(DecCombiner(dec_w[i], lat) for i in range(n))
        self.dec_up = nn.ModuleList(make_cell(cfg.dec_cell, width[s + 1], width[s], "up", cfg.se, m)
                                    for s in reversed(range(cfg.scales - 1)))
        self.post = nn.Sequential(make_cell(cfg.dec_cell, width[0], c, "up", cfg.se, m),
                                  make_cell(cfg.dec_cell, c, c, "none", cfg.se, m))
        out_ch = likelihood_channels(cfg.likelihood, cfg.in_channels, cfg.n_mix)
        self.head = nn.Sequential(nn.ELU(), nn.Conv2d(c, out_ch, 3, padding=1))
        ftr0 = torch.rand(width[-1], self.top_size, self.top_size)
        if cfg.learned_prior_ftr0:
            self.prior_ftr0 = nn.Parameter(ftr0)
        else:
            self.register_buffer("prior_ftr0", torch.zeros_like(ftr0))

    # -- towers ---------------------------------------------------------------------------------
    def encode(self, x: Tensor) -> list[Tensor]:
        """Bottom-up features, one per latent group, in *decoder* order (top group first)."""
        s = self.stem(F.pad(2.0 * x - 1.0, (*self.pad, *self.pad)))   # (B, C, P, P)
        s = self.pre(s)                                                # (B, 2C, P/2, P/2)
        feats: list[Tensor] = []
        g = self.cfg.groups_per_scale
        for sc in range(self.cfg.scales):
            for j in range(g):
                s = self.enc_groups[sc * g + j](s)
                feats.append(s)
            if sc < self.cfg.scales - 1:
                s = self.enc_down[sc](s)
        return feats[::-1]

    def top_down(self, n: int, feats: list[Tensor] | None = None, temperature: float = 1.0
                 ) -> tuple[Tensor, list[Tensor], list[Normal | None], list[Normal]]:
        """Run the shared decoder. With ``feats`` (from :meth:`encode`) the latents come from the
        posteriors; without, from the priors at ``temperature`` (which scales every sigma).

        Returns:
            ``(params, zs, posteriors, priors)``: cropped likelihood parameters and per group
            the latent ``(n, L, h, w)``, its posterior (``None`` when generating) and prior.
        """
        cfg, lat, k = self.cfg, self.cfg.latent_channels, self.top_size
        p = std_normal_like((n, lat, k, k), device=self.prior_ftr0.device)
        q = None
        if feats is not None:
            q = Normal(*self.enc_samplers[0](self.enc0(feats[0])).chunk(2, dim=1))
        z = q.sample() if q is not None else p.sample(temperature)    # (n, L, k, k)
        zs, qs, ps = [z], [q], [p]
        s = self.dec_combiners[0](self.prior_ftr0.unsqueeze(0).expand(n, -1, -1, -1), z)
        for i in range(1, cfg.num_groups):
            if i % cfg.groups_per_scale == 0:
                s = self.dec_up[i // cfg.groups_per_scale - 1](s)     # (n, C/2, 2h, 2w)
            s = self.dec_groups[i - 1](s)
            mu_p, log_sig_p = self.dec_samplers[i - 1](s).chunk(2, dim=1)
            p = Normal(mu_p, log_sig_p)
            q = None
            if feats is not None:
                dmu, dls = self.enc_samplers[i](self.enc_combiners[i - 1](feats[i], s)).chunk(2, 1)
                q = residual_normal(mu_p, log_sig_p, dmu, dls) if cfg.res_dist else Normal(dmu, dls)
            z = q.sample() if q is not None else p.sample(temperature)
            zs.append(z)
            qs.append(q)
            ps.append(p)
            s = self.dec_combiners[i](s, z)
        params = self.head(self.post(s))                               # (n, out, P, P)
        lo = self.pad[0]
        params = params[:, :, lo:lo + cfg.image_size, lo:lo + cfg.image_size]
        return params, zs, qs, ps

    # -- public interface -----------------------------------------------------------------------
    def forward(self, x: Tensor) -> NVAEOutput:
        """Encode ``x`` ``(B, C, S, S)`` in ``[0, 1]``, sample every group from its posterior."""
        params, zs, qs, ps = self.top_down(x.shape[0], self.encode(x))
        kl = [_sum(q.kl(p)) for q, p in zip(qs, ps)]                   # G x (B,)
        log_q = torch.stack([_sum(q.log_prob(z)) for q, z in zip(qs, zs)]).sum(0)
        log_p = torch.stack([_sum(p.log_prob(z)) for p, z in zip(ps, zs)]).sum(0)
        return NVAEOutput(params, kl, log_q, log_p)

    def log_likelihood(self, params: Tensor, x: Tensor) -> Tensor:
        """``log p(x | z)`` per image ``(B,)`` in nats, at the original image size."""
        return likelihood_log_prob(self.cfg.likelihood, params, x, self.cfg.n_mix)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` images ``(n, C, S, S)`` in ``[0, 1]`` (Bernoulli: the mean probabilities)."""
        params = self.top_down(n, None, temperature)[0]
        return likelihood_sample(self.cfg.likelihood, params, self.cfg.in_channels, self.cfg.n_mix)
