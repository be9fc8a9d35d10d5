"""Padding masks done right (post 6810, "层中层与mask").

Convention for the whole package: a mask is a ``torch.bool`` tensor with ``True`` = valid
token, ``False`` = padding. Padding positions may hold arbitrary junk (even ``inf``/``NaN``);
every function here ignores them with ``torch.where``/``masked_fill`` instead of multiplying, so
junk never leaks.

Su's Keras code subtracts ``(1 - m) * 1e10`` before max/softmax. ``1e10`` overflows fp16 (max
65504), so we fill with ``torch.finfo(dtype).min`` instead, safe in fp16, bf16 and fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "lengths_to_mask",
    "masked_cross_entropy",
    "masked_max",
    "masked_mean",
    "masked_softmax",
    "reverse_sequence",
]


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """Turn per-row lengths into a prefix mask.

    Args:
        lengths: ``(B,)`` integer lengths.
        max_len: width ``L`` of the mask; defaults to ``lengths.max()`` (0 for an empty batch),
            which reads a device tensor back to the host: pass it in hot paths on a GPU.

    Returns:
        ``(B, L)`` bool mask, ``mask[b, t] = t < lengths[b]``.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D (B,), got shape {tuple(lengths.shape)}")
    if max_len is None:
        max_len = int(lengths.max().item()) if lengths.numel() else 0
    positions = torch.arange(max_len, device=lengths.device)  # (L,)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)  # (B, L)


def _align_mask(mask: Tensor, x: Tensor, fn: str) -> Tensor:
    """Bool-cast ``mask`` and append trailing singleton dims until it has ``x.dim()`` dims.

    ``x (B, L, D)`` with ``mask (B, L)`` becomes ``mask (B, L, 1)``: the usual sequence layout.
    """
    if mask.dtype != torch.bool:
        mask = mask != 0
    if mask.dim() > x.dim():
        raise ValueError(
            f"{fn}: mask has more dims ({tuple(mask.shape)}) than x ({tuple(x.shape)}); "
            "pass a mask broadcastable to x, e.g. (B, L) or (B, L, 1) for x (B, L, D)"
        )
    while mask.dim() < x.dim():
        mask = mask.unsqueeze(-1)
    try:
        torch.broadcast_shapes(mask.shape, x.shape)
    except RuntimeError as err:
        raise ValueError(
            f"{fn}: mask {tuple(mask.shape)} (after adding trailing dims) does not broadcast to "
            f"x {tuple(x.shape)}; leading dims must match x, e.g. (B, L) for x (B, L, D)"
        ) from err
    return mask


def masked_mean(x: Tensor, mask: Tensor, dim: int | tuple[int, ...],
                keepdim: bool = False) -> Tensor:
    """Mean of ``x`` over ``dim`` counting only valid positions: ``sum(x*m) / sum(m)``.

    Su's example: ``[1, 0, 3, 4, 5]`` padded to length 8 has mean 2.6, not 1.625.

    Args:
        x: e.g. ``(B, L, D)``.
        mask: bool, broadcastable to ``x`` after appending trailing dims (``(B, L)`` or
            ``(B, L, 1)``).
        dim: dimension(s) to reduce (e.g. ``1`` for the sequence axis).
        keepdim: keep the reduced dims as size 1.

    Returns:
        The masked mean; rows with no valid position give 0 (not NaN).
    """
    m = _align_mask(mask, x, "masked_mean")
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    total = torch.where(m, x, zero).sum(dim, keepdim=keepdim)
    count = m.expand(torch.broadcast_shapes(m.shape, x.shape)).sum(dim, keepdim=keepdim)
    return total / count.clamp(min=1).to(total.dtype)


def masked_max(x: Tensor, mask: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    """Max of ``x`` over ``dim`` ignoring padding (Su: ``max(x - (1-m)*1e10)``).

    Padding is filled with ``torch.finfo(x.dtype).min`` (fp16-safe, no 1e10 constant), so an
    all-negative row returns its true max, not the 0 of a zero-padded row.

    Args:
        x: e.g. ``(B, L, D)`` (float or integer; integers are filled with ``iinfo.min``).
        mask: bool, broadcastable to ``x`` after appending trailing dims.
        dim: dimension to reduce.
        keepdim: keep the reduced dim as size 1.

    Returns:
        The masked max; rows with no valid position give 0.
    """
    m = _align_mask(mask, x, "masked_max")
    info = torch.finfo(x.dtype) if x.is_floating_point() else torch.iinfo(x.dtype)
    filled = x.masked_fill(~m, info.min)
    out = filled.amax(dim=dim, keepdim=keepdim)
    # Reduce the mask as given, not expanded to x: ``any`` over a broadcast (size-1) dim is the
    # value itself, and the (B, 1)-shaped result broadcasts in ``where`` (the expanded
    # ``(B, L, D)`` reduction cost as much as the max itself).
    any_valid = m.any(dim=dim, keepdim=keepdim)
    return torch.where(any_valid, out, torch.zeros((), dtype=out.dtype, device=out.device))


def masked_softmax(logits: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` restricted to valid positions (Su: ``softmax(x - (1-m)*1e10)``).

    Masked entries get exactly 0 probability; a fully-masked row is all zeros (not NaN, not
    uniform). Safe in fp16/bf16: padding is filled with ``finfo.min``, never ``1e10``.

    Args:
        logits: e.g. attention scores ``(B, H, Lq, Lk)``.
        mask: bool with the SAME number of dims as ``logits`` and broadcastable to it, e.g.
            ``key_mask[:, None, None, :]`` for scores ``(B, H, Lq, Lk)``. (No automatic
            unsqueezing here: a ``(B, Lk)`` key mask against ``(B, Lq, Lk)`` would be ambiguous.)
        dim: the axis to normalise (the key axis).

    Returns:
        Probabilities with the shape of ``logits``.
    """
    if mask.dtype != torch.bool:
        mask = mask != 0
    if mask.dim() != logits.dim():
        raise ValueError(
            f"masked_softmax: mask {tuple(mask.shape)} must have as many dims as logits "
            f"{tuple(logits.shape)}; unsqueeze it explicitly, e.g. key_mask[:, None, :] for "
            "logits (B, Lq, Lk)"
        )
    filled = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
    probs = torch.softmax(filled, dim=dim)
    return torch.where(mask, probs, torch.zeros((), dtype=probs.dtype, device=probs.device))


def reverse_sequence(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse the first ``lengths[b]`` steps of each row; padding stays where it is.

    The PyTorch analogue of ``tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0)``,
    done with one ``gather``. Applying it twice is the identity.

    Args:
        x: ``(B, L, ...)``.
        lengths: ``(B,)`` integer lengths, each in ``[0, L]``; checked when they are on the CPU
            (free), not on an accelerator (that would synchronise with the host every call).

    Returns:
        Tensor shaped like ``x``.
    """
    if x.dim() < 2:
        raise ValueError(f"reverse_sequence: x must be (B, L, ...), got shape {tuple(x.shape)}")
    B, L = x.shape[:2]
    lengths = torch.as_tensor(lengths)
    if lengths.shape != (B,):
        raise ValueError(f"reverse_sequence: lengths must be ({B},), got {tuple(lengths.shape)}")
    if B and lengths.device.type == "cpu" and (int(lengths.min()) < 0 or int(lengths.max()) > L):
        raise ValueError(f"reverse_sequence: lengths must lie in [0, {L}], got {lengths.tolist()}")
    t = torch.arange(L, device=x.device).unsqueeze(0)  # (1, L)
    lens = lengths.to(x.device, torch.long).unsqueeze(1)  # (B, 1)
    idx = torch.where(t < lens, lens - 1 - t, t)  # (B, L)
    idx = idx.view(B, L, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, idx)


def masked_cross_entropy(logits: Tensor, targets: Tensor, mask: Tensor,
                         reduction: str = "mean") -> Tensor:
    """Token-level cross entropy averaged over valid tokens only (Su: "loss那里mask掉就行").

    Targets at padding are ignored (they may be any value, even out of vocabulary range).
    Computed in float32 for fp16/bf16 logits.

    Args:
        logits: ``(B, L, V)`` unnormalised scores.
        targets: ``(B, L)`` integer class ids.
        mask: ``(B, L)`` bool, True = token counts.
        reduction: ``mean`` (over valid tokens) or ``sum`` (for exact accumulation, see
            :mod:`kexue.training.loss`).

    Returns:
        Scalar: sum of per-token CE over valid tokens / number of valid tokens (0 if none), or
        the sum alone.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction={reduction!r}; use mean or sum")
    if logits.dim() != 3 or targets.shape != logits.shape[:2] or mask.shape != targets.shape:
        raise ValueError(
            "masked_cross_entropy expects logits (B, L, V), targets (B, L), mask (B, L); got "
            f"{tuple(logits.shape)}, {tuple(targets.shape)}, {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        mask = mask != 0
    safe_targets = targets.masked_fill(~mask, 0).long()
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # fp16/bf16 -> fp32
    ce = F.cross_entropy(logits.transpose(1, 2), safe_targets, reduction="none")  # (B, L)
    ce = torch.where(mask, ce, torch.zeros((), dtype=ce.dtype, device=ce.device))
    if reduction == "sum":
        return ce.sum()
    return ce.sum() / mask.sum().clamp(min=1).to(ce.dtype)
