"""Config dataclasses for the NVAE family (Su's post 7574; Vahdat & Kautz 2020, NVlabs/NVAE).

Defaults are "NVAE-lite" CPU sizes for dynamically binarised 28x28 MNIST: base width 16, 2 latent
scales x 2 groups of 4 latent channels (the paper's MNIST run: width 32, 2 x 10 groups of 20).
:class:`VAEConfig` is the single-latent convolutional baseline, sized so that its parameter count
at the defaults is close to NVAE-lite's (see :func:`kexue.models.nvae.baseline.match_width`).
"""

from __future__ import annotations

from dataclasses import dataclass

from kexue.config import require_at_least

CELLS = ("res", "mbconv")
LIKELIHOODS = ("bernoulli", "logistic_mixture")


def padded_size(image_size: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``image_size`` (28 -> 32 for 8)."""
    return -(-image_size // multiple) * multiple


@dataclass
class NVAEConfig:
    """Architecture and regularisers of :class:`kexue.models.nvae.model.NVAE`.

    Args:
        in_channels: Image channels (1 MNIST, 3 CIFAR).
        image_size: Height = width of the inputs; padded internally to a multiple of
            ``2**(scales + 1)`` (28 -> 32, pad 2 each side) and cropped back for the likelihood.
        channels: Base width at the padded resolution; it doubles at each downsampling.
        scales: Latent scales (resolutions ``padded/2 .. padded/2**scales``).
        groups_per_scale: Latent groups per scale (paper MNIST: 10).
        latent_channels: Channels of each latent group (paper: 20).
        enc_cells_per_group: Encoder cells before each group's feature is taken.
        dec_cells_per_group: Decoder cells before each (non-top) group.
        se: Squeeze-and-excitation at the end of every cell.
        res_dist: Residual posterior ``N(mu_p + dmu, log_sig_p + dlog_sig)`` (``--res_dist``).
        dec_cell: ``mbconv`` (inverted residual e6k5) or ``res``.
        enc_cell: ``res`` (2 x [BN - Swish - Conv3x3]) or ``mbconv``.
        learned_prior_ftr0: Learned top decoder input ``prior_ftr0`` (else zeros).
        spectral_lambda: Weight of the spectral (``sum sigma_max``) and BN (``sum max|gamma|``)
            regularisers (``--weight_decay_norm``; 0 disables both).
        power_iters_init: Power iterations the first time a weight is seen (NVAE: 10).
        power_iters: Power iterations per training step afterwards (NVAE: 1).
        kl_warmup_frac: Fraction of training over which the KL weight rises linearly to 1.
        kl_balance: Balance the per-group KL terms during warm-up.
        likelihood: ``bernoulli`` (binary images) or ``logistic_mixture`` (256-level colour).
        n_mix: Logistic mixture components.
        bn_momentum: BatchNorm momentum in PyTorch's convention (NVAE: 0.05).
    """

    in_channels: int = 1
    image_size: int = 28
    channels: int = 16
    scales: int = 2
    groups_per_scale: int = 2
    latent_channels: int = 4
    enc_cells_per_group: int = 1
    dec_cells_per_group: int = 1
    se: bool = True
    res_dist: bool = True
    dec_cell: str = "mbconv"
    enc_cell: str = "res"
    learned_prior_ftr0: bool = True
    spectral_lambda: float = 1e-2
    power_iters_init: int = 10
    power_iters: int = 1
    kl_warmup_frac: float = 0.3
    kl_balance: bool = True
    likelihood: str = "bernoulli"
    n_mix: int = 10
    bn_momentum: float = 0.05

    @property
    def padded_size(self) -> int:
        """Internal resolution: ``image_size`` rounded up to a multiple of ``2**(scales+1)``."""
        return padded_size(self.image_size, 2 ** (self.scales + 1))

    @property
    def num_groups(self) -> int:
        """Total latent groups ``scales * groups_per_scale``."""
        return self.scales * self.groups_per_scale

    def validate(self) -> None:
        require_at_least(self, 1, "in_channels", "image_size", "channels", "scales",
                         "groups_per_scale", "latent_channels", "n_mix", "power_iters_init")
        require_at_least(self, 0, "enc_cells_per_group", "dec_cells_per_group", "power_iters")
        _check_common(self.likelihood, self.kl_warmup_frac, self.bn_momentum)
        for name in ("dec_cell", "enc_cell"):
            if getattr(self, name) not in CELLS:
                raise ValueError(f"{name}={getattr(self, name)!r} is not valid. Fix: use one of "
                                 f"{list(CELLS)}.")
        if self.spectral_lambda < 0:
            raise ValueError(f"spectral_lambda={self.spectral_lambda!r} must be >= 0. Fix: use "
                             "1e-2 (MNIST / CIFAR) or 1e-1 (CelebA, FFHQ).")


@dataclass
class VAEConfig:
    """Single-latent convolutional VAE baseline (:class:`kexue.models.nvae.baseline.ConvVAE`).

    Encoder: 2 x [Conv4x4/2 - BN - Swish] (28 -> 7) then Conv1x1 to ``2*latent_channels``;
    latent ``(latent_channels, image_size/4, image_size/4)``; the decoder mirrors it with
    transposed convolutions. ``hidden=78`` matches NVAE-lite's default parameter count within
    2% (492k vs 484k parameters; tested within a factor 1.5).

    Args:
        in_channels: Image channels.
        image_size: Height = width; must be divisible by 4.
        hidden: Width of the first conv (the second has ``2*hidden``).
        latent_channels: Channels of the latent map.
        kl_warmup_frac: As in :class:`NVAEConfig` (no balancing: one group).
        likelihood: ``bernoulli`` or ``logistic_mixture``.
        n_mix: Logistic mixture components.
        bn_momentum: BatchNorm momentum.
    """

    in_channels: int = 1
    image_size: int = 28
    hidden: int = 78
    latent_channels: int = 4
    kl_warmup_frac: float = 0.3
    likelihood: str = "bernoulli"
    n_mix: int = 10
    bn_momentum: float = 0.05

    def validate(self) -> None:
        require_at_least(self, 1, "in_channels", "image_size", "hidden", "latent_channels",
                         "n_mix")
        _check_common(self.likelihood, self.kl_warmup_frac, self.bn_momentum)
        if self.image_size % 4:
            raise ValueError(f"image_size={self.image_size} is not divisible by 4. Fix: use 28 "
                             "or 32.")


def _check_common(likelihood: str, kl_warmup_frac: float, bn_momentum: float) -> None:
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood={likelihood!r} is not valid. Fix: use one of "
                         f"{list(LIKELIHOODS)}.")
    if not 0.0 <= kl_warmup_frac <= 1.0:
        raise ValueError(f"kl_warmup_frac={kl_warmup_frac!r} must lie in [0, 1]. Fix: use 0.3.")
    if not 0.0 < bn_momentum <= 1.0:
        raise ValueError(f"bn_momentum={bn_momentum!r} must lie in (0, 1]. Fix: use 0.05.")
