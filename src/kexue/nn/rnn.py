"""Mask-aligned bidirectional LSTM (post 6810).

Keras' ``Bidirectional`` reverses the whole padded row, so the backward RNN first reads the
padding. Su's ``OurBidirectional`` reverses only the valid prefix (``tf.reverse_sequence``), runs
the backward RNN, reverses back, concatenates and multiplies by the mask. We get exactly the same
result from the cuDNN/CPU kernels with ``pack_padded_sequence(enforce_sorted=False)`` on a
bidirectional ``nn.LSTM``: the backward direction starts at each row's last valid token, and the
output equals running the LSTM on every unpadded sequence on its own (tested both ways).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from kexue.nn.masks import lengths_to_mask

__all__ = ["AlignedBiLSTM"]


class AlignedBiLSTM(nn.Module):
    """Bidirectional LSTM whose backward direction runs on the valid prefix only.

    Args:
        input_size: feature size ``D`` of the input.
        hidden_size: hidden units per direction (output is ``2 * hidden_size``).
        num_layers: stacked layers; every layer is aligned (packing carries through the stack).
        dropout: dropout between stacked layers (as in ``nn.LSTM``; ignored for 1 layer).

    The wrapped ``nn.LSTM`` is ``self.lstm`` (``batch_first=True, bidirectional=True``).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                            bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)

    @property
    def output_size(self) -> int:
        """Feature size of the output, ``2 * hidden_size``."""
        return 2 * self.hidden_size

    def forward(self, x: Tensor, mask: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Run both directions on the valid prefix of each row.

        Args:
            x: ``(B, L, D)`` inputs; padding may hold anything.
            mask: ``(B, L)`` bool prefix mask (True = valid; valid tokens must come first).
                Rows of length 0 are allowed and give all-zero output.
            lengths: ``(B,)`` the rows' lengths ON THE HOST (a CPU tensor, e.g. from the batch
                before it moved to the GPU), with ``mask == lengths_to_mask(lengths, L)``.
                ``pack_padded_sequence`` needs CPU lengths: without them they are read from
                ``mask`` (one device-to-host copy, a synchronisation per call on a GPU).

        Returns:
            ``(B, L, 2 * hidden_size)``: ``[forward ; backward]`` states, zeros at padding.
        """
        if x.dim() != 3 or mask.shape != x.shape[:2]:
            raise ValueError(f"AlignedBiLSTM expects x (B, L, D) and mask (B, L); got "
                             f"{tuple(x.shape)} and {tuple(mask.shape)}")
        if mask.dtype != torch.bool:
            mask = mask != 0
        B, L, _ = x.shape
        if B == 0 or L == 0:
            return x.new_zeros(B, L, self.output_size)
        host_lengths = self._host_lengths(mask, lengths, L)
        # pack_padded_sequence rejects length 0: run such rows on 1 junk step, then zero them.
        packed = pack_padded_sequence(x, host_lengths.clamp(min=1), batch_first=True,
                                      enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=L)  # (B, L, 2H)
        return out.masked_fill(~mask.unsqueeze(-1), 0.0)

    @staticmethod
    def _host_lengths(mask: Tensor, lengths: Tensor | None, L: int) -> Tensor:
        """CPU ``(B,)`` lengths: ``lengths`` checked on the host, or read from ``mask`` (one copy)."""
        if lengths is None:
            host_mask = mask.cpu()                                    # the one host copy
            lengths = host_mask.sum(dim=1)
            if not torch.equal(lengths_to_mask(lengths, L), host_mask):
                raise ValueError("AlignedBiLSTM needs a prefix mask (valid tokens first, then "
                                 "padding); build it with kexue.nn.lengths_to_mask(lengths, L)")
            return lengths
        if lengths.device.type != "cpu" or lengths.shape != mask.shape[:1]:
            raise ValueError(
                f"AlignedBiLSTM: lengths must be a CPU tensor of shape ({mask.shape[0]},) (the "
                f"batch's host-side lengths), got {tuple(lengths.shape)} on {lengths.device}; "
                "pass lengths=None to read them from the mask instead")
        if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > L):
            raise ValueError(f"AlignedBiLSTM: lengths must lie in [0, {L}], got {lengths.tolist()}")
        return lengths
