"""Encoded candidate descriptions, cached per model across texts and calls (issue 14)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from kexue.models.entity_linking.batching import pad_rows
from kexue.models.entity_linking.config import DESCRIPTION_CACHE_MIB
from kexue.models.entity_linking.model import JointLinker
from kexue.nn import lengths_to_mask


def weight_version(module: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    """Fingerprint of the weights: every parameter's storage address and in-place version.

    An optimizer step, ``load_state_dict`` (``copy_``) or EMA swap bumps ``Tensor._version``;
    ``.to(device)`` moves the storage. Either changes the fingerprint.
    """
    return tuple((p.data_ptr(), p._version) for p in module.parameters())


class DescriptionCache:
    """Encoded descriptions of one model, keyed by entity id, on the model's device.

    Per entity it holds the description BiLSTM states ``d (M_e, 2H)`` in a padded table
    ``(capacity, max_len, 2H)`` (grown by doubling) with host-side lengths, so a batch is
    sliced to its longest description without a device sync. The attention projections of
    ``d`` are recomputed per batch (one matmul): caching them would take ``3 * heads *
    head_dim / 2H`` = 12x the memory at the CPU defaults, 3x at Su's sizes.

    Validity: entries belong to one weight version (:func:`weight_version`). Every
    :meth:`rows` call compares the model's fingerprint with the cached one and drops the whole
    cache when the weights were trained, reloaded or moved, so a cached encoding never outlives
    the weights that produced it. Memory is bounded by ``max_bytes``: when new entries would
    exceed it, the cache is emptied first (then refilled by the entities of the current call).

    Args:
        net: The model (eval mode for inference).
        encode_inputs: ``entity id -> (char ids, word ids or None)``
            (``LinkingResources.description``; at most ``max_len`` chars).
        max_len: Longest description (``ModelConfig.max_desc_len``).
        batch_size: Descriptions per encoder batch.
        max_bytes: Memory budget of the table.
    """

    def __init__(self, net: JointLinker,
                 encode_inputs: Callable[[str], tuple[list[int], list[int] | None]],
                 max_len: int, batch_size: int = 128, max_bytes: int = DESCRIPTION_CACHE_MIB * 2**20) -> None:
        self.net = net
        self.encode_inputs = encode_inputs
        self.max_len = max_len
        self.batch_size = batch_size
        self.max_rows = max(1, max_bytes // (max_len * net.desc_lstm.output_size * 4))
        self.clear()

    def clear(self) -> None:
        """Forget every entry (and the weight fingerprint)."""
        self.row: dict[str, int] = {}
        self.lengths = np.zeros(0, dtype=np.int64)
        self.table: Tensor | None = None  # (capacity, max_len, 2H)
        self.version: tuple[tuple[int, int], ...] | None = None

    def __len__(self) -> int:
        return len(self.row)

    def _reserve(self, n: int, like: Tensor) -> Tensor:
        """The table with room for ``n`` rows (doubling its capacity when needed)."""
        if self.table is None or self.table.shape[0] < n:
            capacity = max(n, 2 * (0 if self.table is None else self.table.shape[0]), 64)
            table = like.new_zeros(capacity, self.max_len, like.shape[-1])
            if self.table is not None:
                table[:len(self.row)] = self.table[:len(self.row)]
            self.table = table
        return self.table

    @torch.no_grad()
    def _encode(self, ids: Sequence[str]) -> None:
        """Encode the descriptions of new ``ids`` in batches into the next table rows."""
        device = next(self.net.parameters()).device
        lengths = []
        for b in range(0, len(ids), self.batch_size):
            inputs = [self.encode_inputs(e) for e in ids[b:b + self.batch_size]]
            desc = pad_rows([c for c, _ in inputs], torch.long).to(device)  # (b, M)
            words = None
            if inputs[0][1] is not None:
                words = pad_rows([w for _, w in inputs], torch.long).to(device)
            n = torch.tensor([len(c) for c, _ in inputs])  # host lengths: no device wait
            d, _ = self.net.encode_description(desc, words, lengths=n)  # (b, M, 2H)
            start = len(self.row)
            table = self._reserve(start + d.shape[0], d)
            table[start:start + d.shape[0], :d.shape[1]] = d
            for e, (c, _) in zip(ids[b:b + self.batch_size], inputs):
                self.row[e] = len(self.row)
                lengths.append(len(c))
        self.lengths = np.concatenate([self.lengths, np.asarray(lengths, dtype=np.int64)])

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """Table rows of ``ids`` (encoding the missing ones first, in one pass)."""
        version = weight_version(self.net)
        if version != self.version:
            self.clear()
            self.version = version
        missing = list(dict.fromkeys(e for e in ids if e not in self.row))
        if missing and len(self.row) + len(missing) > self.max_rows:
            self.clear()
            self.version = version
            missing = list(dict.fromkeys(ids))
        if missing:
            self._encode(missing)
        return np.fromiter((self.row[e] for e in ids), dtype=np.int64, count=len(ids))

    def gather(self, rows: np.ndarray) -> tuple[Tensor, Tensor]:
        """``d (B, M, 2H)`` and ``d_mask (B, M)`` of table rows, ``M`` = their longest."""
        if self.table is None:
            raise RuntimeError("DescriptionCache.gather before rows()")
        lengths = self.lengths[rows]
        width = int(lengths.max())
        idx = torch.from_numpy(rows).to(self.table.device)
        d = self.table.index_select(0, idx)[:, :width]  # (B, M, 2H)
        mask = lengths_to_mask(torch.from_numpy(lengths), width)  # (B, M), host lengths
        return d, mask.to(self.table.device, non_blocking=True)
