"""Reusable layers for Su's posts: padding masks done right, aligned BiLSTM, masked multi-head
attention (with ``mask_right``/causal), self-modulated LayerNorm, masked token cross entropy.

Masks are ``torch.bool`` tensors, ``True`` = valid token.
"""

from kexue.nn.attention import MultiHeadAttention
from kexue.nn.masks import (
    lengths_to_mask,
    masked_cross_entropy,
    masked_max,
    masked_mean,
    masked_softmax,
    reverse_sequence,
)
from kexue.nn.norm import SelfModulatedLayerNorm
from kexue.nn.rnn import AlignedBiLSTM
from kexue.nn.softmax import softmax_last

__all__ = [
    "AlignedBiLSTM",
    "MultiHeadAttention",
    "SelfModulatedLayerNorm",
    "lengths_to_mask",
    "masked_cross_entropy",
    "masked_max",
    "masked_mean",
    "masked_softmax",
    "reverse_sequence",
    "softmax_last",
]
