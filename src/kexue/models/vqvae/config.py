"""Config dataclasses for the VQ-VAE family (Su's post 6760, van den Oord et al. 2017).

Defaults are the reduced CPU sizes for 28x28 MNIST (a 7x7 code grid, K=64, d=16). Su's CelebA
setting is ``image_size=128, in_channels=3, n_downsample=2`` (a 32x32 grid) with ``K=64, d=128``.

Loss naming follows the *paper*: ``||sg[z] - e||^2`` (codebook term, weight 1) +
``beta * ||z - sg[e]||^2`` (commitment term, ``beta=0.25``). In Su's post the same two weights are
called beta (=1) and gamma (=0.25 beta).
"""

from __future__ import annotations

from dataclasses import dataclass

from kexue.config import require_at_least, require_dropout

NORMS = ("batch", "group", "none")
PRIOR_KINDS = ("pixelatt", "pixelcnn")


@dataclass
class VQVAEConfig:
    """Architecture and quantiser of :class:`kexue.models.vqvae.model.VQVAE`.

    Args:
        in_channels: Image channels (1 for MNIST, 3 for CelebA).
        image_size: Height = width of the inputs; must be divisible by ``2**n_downsample``.
        hidden: Channels of the strided convolutions and residual blocks (Su: 128).
        n_downsample: Stride-2 4x4 convolutions (2: 28 -> 7, 128 -> 32).
        n_res_blocks: Residual blocks after the downsampling (Su: 3 at 128x128).
        res_hidden: Channels inside a residual block.
        code_dim: Code vector size d (Su: 128).
        codebook_size: Number of codes K (Su: 64; paper: 512).
        beta: Commitment weight (paper beta=0.25; Su's gamma).
        ema: Update the codebook by EMA (paper appendix A.1) instead of the codebook loss.
        decay: EMA decay (paper: 0.99).
        eps: Laplace smoothing of the EMA cluster sizes.
        dead_code_steps: Re-initialise a code unused for this many consecutive training steps
            from a random encoder output of the batch (0 disables restarts).
        norm: Normalisation after the convolutions: ``batch`` (Su), ``group`` or ``none``.
    """

    in_channels: int = 1
    image_size: int = 28
    hidden: int = 32
    n_downsample: int = 2
    n_res_blocks: int = 1
    res_hidden: int = 16
    code_dim: int = 16
    codebook_size: int = 64
    beta: float = 0.25
    ema: bool = True
    decay: float = 0.99
    eps: float = 1e-5
    dead_code_steps: int = 100
    norm: str = "group"

    @property
    def grid_size(self) -> int:
        """Side of the code grid: ``image_size / 2**n_downsample``."""
        return self.image_size // 2 ** self.n_downsample

    def validate(self) -> None:
        require_at_least(self, 1, "in_channels", "image_size", "hidden", "n_downsample",
                         "res_hidden", "code_dim")
        require_at_least(self, 2, "codebook_size")
        require_at_least(self, 0, "n_res_blocks", "dead_code_steps")
        if self.image_size % 2 ** self.n_downsample:
            raise ValueError(
                f"image_size={self.image_size} is not divisible by 2**n_downsample="
                f"{2 ** self.n_downsample}. Fix: resize the images or change n_downsample "
                "(28 -> 7 needs n_downsample=2, 128 -> 32 needs 2).")
        if self.beta < 0:
            raise ValueError(f"beta={self.beta!r} must be >= 0. Fix: use the paper's 0.25.")
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"decay={self.decay!r} must lie in [0, 1). Fix: use the paper's 0.99.")
        if self.eps <= 0:
            raise ValueError(f"eps={self.eps!r} must be > 0. Fix: use 1e-5.")
        if self.norm not in NORMS:
            raise ValueError(f"norm={self.norm!r} is not valid. Fix: use one of {list(NORMS)}.")


@dataclass
class PriorConfig:
    """Autoregressive prior over the code grid (:mod:`kexue.models.vqvae.prior`).

    Args:
        kind: ``pixelatt`` (Su's causal self-attention over the raster sequence) or
            ``pixelcnn`` (gated PixelCNN, van den Oord et al. 2016).
        d_model: PixelAtt width (Su: 256).
        layers: PixelAtt blocks (Su: 4).
        heads: PixelAtt heads (Su: 8); must divide ``d_model``.
        dropout: Dropout in the PixelAtt attention and MLP.
        pixelcnn_channels: Channels of the gated PixelCNN stacks.
        pixelcnn_layers: Gated layers (the first is mask type A, the rest type B).
        kernel: PixelCNN kernel size (odd, >= 3).
    """

    kind: str = "pixelatt"
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    dropout: float = 0.0
    pixelcnn_channels: int = 64
    pixelcnn_layers: int = 5
    kernel: int = 3

    def validate(self) -> None:
        if self.kind not in PRIOR_KINDS:
            raise ValueError(f"kind={self.kind!r} is not valid. Fix: use one of "
                             f"{list(PRIOR_KINDS)}.")
        require_at_least(self, 1, "d_model", "layers", "heads", "pixelcnn_channels",
                         "pixelcnn_layers")
        require_dropout(self)
        if self.d_model % self.heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by heads={self.heads}. "
                             "Fix: choose heads dividing d_model (e.g. 64 and 4).")
        if self.kernel < 3 or self.kernel % 2 == 0:
            raise ValueError(f"kernel={self.kernel} must be odd and >= 3. Fix: use 3 or 5.")
