"""Autoregressive priors over a VQ-VAE code grid in raster order, fitted after the VQ-VAE.

Both priors map teacher-forced codes (B, H, W) to logits (B, K, H, W) such that the logits at
raster position ``t = i * W + j`` depend only on the codes at positions ``< t``:

* :class:`PixelAttPrior` -- after Su's "PixelAtt": causal multi-head self-attention over the
  flattened sequence, shifted right behind a start token (id K), with row + column position
  embeddings. DEVIATION from Su's commented block (``4 x [LayerNorm, causal 8-head x 32
  attention, Dense(256, relu), residual]``): each block here is a standard pre-LN transformer
  block (attention with q/k/v biases and an output projection, then a second LayerNorm and a
  residual MLP 256 -> 1024 -> 256), so it has more parameters and is not his exact function.
* :class:`GatedPixelCNNPrior` -- gated PixelCNN with vertical and horizontal stacks (van den Oord
  et al. 2016). The vertical stack sees only rows above, the horizontal stack only pixels to the
  left in the current row; it keeps the paper's receptive field, never any future position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kexue.models.vqvae.config import PriorConfig


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention with a causal mask (``scaled_dot_product_attention``)."""

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, t, d))  # (B, T, D)


class AttBlock(nn.Module):
    """Pre-LN transformer block: ``x + Att(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.att = CausalSelfAttention(d_model, heads, dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.ReLU(),
                                 nn.Linear(4 * d_model, d_model), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.att(self.ln1(x))
        return x + self.mlp(self.ln2(x))  # (B, T, D)


class PixelAttPrior(nn.Module):
    """A PixelAtt prior after Su: a causal transformer over the raster sequence of codes (the
    blocks are standard pre-LN transformer blocks, not Su's exact block: module docstring).

    The input at position t is the code at t-1 (the start token K at t = 0) plus the row and
    column embeddings of position t; the output at t predicts the code at t.
    """

    def __init__(self, codebook_size: int, height: int, width: int, d_model: int = 64,
                 layers: int = 2, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.codebook_size, self.height, self.width = codebook_size, height, width
        self.tok = nn.Embedding(codebook_size + 1, d_model)  # id K = start token
        self.row = nn.Embedding(height, d_model)
        self.col = nn.Embedding(width, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(AttBlock(d_model, heads, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, codebook_size)
        pos = torch.arange(height * width)
        self.register_buffer("row_ids", pos // width, persistent=False)  # (T,)
        self.register_buffer("col_ids", pos % width, persistent=False)   # (T,)

    def forward(self, codes: Tensor) -> Tensor:
        """Logits (B, K, H, W) for teacher-forced ``codes`` (B, H, W)."""
        b, h, w = codes.shape
        seq = codes.reshape(b, h * w).long()                                 # (B, T)
        start = torch.full((b, 1), self.codebook_size, dtype=torch.long, device=codes.device)
        inp = torch.cat([start, seq[:, :-1]], dim=1)                         # (B, T) shifted right
        x = self.tok(inp) + self.row(self.row_ids) + self.col(self.col_ids)  # (B, T, D)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln(x))                                       # (B, T, K)
        return logits.transpose(1, 2).reshape(b, self.codebook_size, h, w)


class MaskedConv2d(nn.Conv2d):
    """``Conv2d`` whose weight is multiplied by a fixed 0/1 ``mask`` buffer at every call."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int],
                 padding: tuple[int, int], mask: Tensor) -> None:
        super().__init__(c_in, c_out, kernel, padding=padding)
        self.register_buffer("mask", mask.view(1, 1, *kernel), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.mask.to(self.weight.dtype), self.bias)


class GatedLayer(nn.Module):
    """One gated PixelCNN layer: ``tanh(W_f * x) * sigmoid(W_g * x)`` on both stacks.

    Vertical stack: a (k//2 + 1) x k convolution padded k//2 on top and cropped to H rows, so
    output row i sees input rows i - k//2 .. i (type A: .. i - 1). Since the layer-0 vertical
    features of row i only see rows < i, every vertical feature of row i depends on rows < i.
    Horizontal stack: a 1 x (k//2 + 1) convolution over columns j - k//2 .. j (type A: .. j - 1),
    plus a 1x1 link from the vertical stack of the same row and (type B) a residual connection.
    """

    def __init__(self, channels: int, kernel: int, mask_type: str) -> None:
        super().__init__()
        half = kernel // 2
        self.channels, self.half, self.residual = channels, half, mask_type == "B"
        v_mask = torch.ones(half + 1, kernel)
        h_mask = torch.ones(1, half + 1)
        if mask_type == "A":
            v_mask[-1] = 0.0      # exclude the current row
            h_mask[0, -1] = 0.0   # exclude the current pixel
        self.v_conv = MaskedConv2d(channels, 2 * channels, (half + 1, kernel), (half, half), v_mask)
        self.h_conv = MaskedConv2d(channels, 2 * channels, (1, half + 1), (0, half), h_mask)
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)

    @staticmethod
    def gate(x: Tensor) -> Tensor:
        f, g = x.chunk(2, dim=1)
        return torch.tanh(f) * torch.sigmoid(g)

    def forward(self, x_v: Tensor, x_h: Tensor) -> tuple[Tensor, Tensor]:
        h, w = x_v.shape[-2:]
        v = self.v_conv(x_v)[:, :, :h, :]            # (B, 2C, H, W), rows <= i (A: < i)
        h_pre = self.h_conv(x_h)[:, :, :, :w]        # (B, 2C, H, W), cols <= j (A: < j)
        out_h = self.h_out(self.gate(h_pre + self.v_to_h(v)))
        if self.residual:
            out_h = out_h + x_h
        return self.gate(v), out_h                   # (B, C, H, W) x 2


class GatedPixelCNNPrior(nn.Module):
    """Gated PixelCNN over the code grid: embedding, ``layers`` gated layers (first type A),
    then ReLU - Conv1x1 - ReLU - Conv1x1 to K logits on the horizontal stack."""

    def __init__(self, codebook_size: int, height: int, width: int, channels: int = 64,
                 layers: int = 5, kernel: int = 3) -> None:
        super().__init__()
        self.codebook_size, self.height, self.width = codebook_size, height, width
        self.embed = nn.Embedding(codebook_size, channels)
        self.layers = nn.ModuleList(GatedLayer(channels, kernel, "A" if i == 0 else "B")
                                    for i in range(layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, codebook_size, 1))

    def forward(self, codes: Tensor) -> Tensor:
        """Logits (B, K, H, W) for teacher-forced ``codes`` (B, H, W)."""
        x = self.embed(codes.long()).permute(0, 3, 1, 2)  # (B, C, H, W)
        x_v, x_h = x, x
        for layer in self.layers:
            x_v, x_h = layer(x_v, x_h)
        return self.head(x_h)                              # (B, K, H, W)


PRIORS = {"pixelatt": PixelAttPrior, "pixelcnn": GatedPixelCNNPrior}


def build_prior(cfg: PriorConfig, codebook_size: int, height: int, width: int) -> nn.Module:
    """The prior named by ``cfg.kind`` (a key of :data:`PRIORS`) for a K-code H x W grid."""
    cfg.validate()
    if cfg.kind == "pixelatt":
        return PixelAttPrior(codebook_size, height, width, cfg.d_model, cfg.layers, cfg.heads,
                             cfg.dropout)
    return PRIORS[cfg.kind](codebook_size, height, width, cfg.pixelcnn_channels,
                            cfg.pixelcnn_layers, cfg.kernel)


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@torch.no_grad()
def sample(prior: nn.Module, n: int, height: int, width: int, temperature: float = 1.0,
           generator: torch.Generator | None = None) -> Tensor:
    """Ancestral sampling, one raster position at a time (H * W forward passes).

    Args:
        prior: A prior mapping codes (n, H, W) to logits (n, K, H, W).
        n: Number of code grids.
        temperature: Softmax temperature (> 0); 0 takes the argmax (greedy).
        generator: Optional RNG for ``torch.multinomial`` (on the prior's device).

    Returns:
        Code ids (n, H, W), int64 in ``[0, K)``.
    """
    if temperature < 0:
        raise ValueError(f"temperature={temperature!r} must be >= 0 (0 = greedy)")
    was = prior.training
    prior.eval()
    codes = torch.zeros(n, height, width, dtype=torch.long, device=_device(prior))
    try:
        for t in range(height * width):
            i, j = divmod(t, width)
            logits = prior(codes)[:, :, i, j].float()  # (n, K)
            if temperature == 0:
                codes[:, i, j] = logits.argmax(dim=1)
            else:
                probs = torch.softmax(logits / temperature, dim=1)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    finally:
        prior.train(was)
    return codes


@torch.no_grad()
def nll_per_code(prior: nn.Module, indices: Tensor) -> float:
    """Mean cross-entropy (nats per code) of ``indices`` (B, H, W) under ``prior`` (eval mode).

    A uniform prior gives ``ln K``; bits per code = nats / ln 2.
    """
    was = prior.training
    prior.eval()
    try:
        logits = prior(indices.to(_device(prior)))  # (B, K, H, W)
        return float(F.cross_entropy(logits.float(), indices.to(logits.device).long()))
    finally:
        prior.train(was)

