"""Seq2seq title generator with optional bidirectional (L2R + R2L) decoding (post 6877).

Architecture (Su's ``seq2seq_bidecoder.py``, sizes from :class:`Seq2SeqConfig`):

* one shared char ``nn.Embedding`` (``Seq2Seq.embedding``) for the encoder and both decoders;
* encoder ``LN -> AlignedBiLSTM -> LN -> AlignedBiLSTM`` (mask-aligned), ``x_max`` = masked max;
* two decoders with separate weights, ``l2r`` and ``r2l``:
  ``Emb -> SMLN(x_max) -> LSTM -> SMLN -> LSTM -> SMLN`` (the "states"), then a "head":
  ``concat[h, Attn(q=h, k=h_other, mask_right), Attn(q=h, k=x, x_mask)] -> Dense -> LeakyReLU(0.2)``
  (the cross-direction attention only when ``cross_attention``; the baseline drops it);
* a shared classifier ``Dense(V)``; logits averaged with the copy prior
  ``ScaleShift(bag of source chars)``: ``(logits + prior) / 2``.

Targets: L2R ``yl = [2] + title + [3]``, R2L ``yr = [3] + reversed(title) + [2]`` (one token set;
in R2L id 3 acts as start and 2 as end). Decoder *inputs* are ``y[:, :-1]``.

Mask-right semantics: L2R input position n (tokens ``yl[0..n]``) attends R2L input positions
``<= n``. With gold R2L tokens this leaks the future: at position n the R2L states already encode
``title[-1..-n]``, which overlaps the L2R target once n passes the middle (the "leakage" of the
post; remedy: second pass with generated context, see ``yl_ctx`` / ``yr_ctx``).

Full-prefix decoding helpers (``next_probs`` / ``pair_next_probs``; the reference path of
:mod:`kexue.models.title_gen.beam`, ``cache=False``) recompute each decoder's LSTM over the whole
prefix every step (O(T^2) in the title length); only the LAST query position goes through the
attention heads. In the bidirectional search the LSTM states and the source attention run once
per hypothesis (N*k rows) and only the cross-direction attention, the output Dense and the
classifier run on the k x k pairs (``DirectionDecoder.pair_head``). The default decoding path is
incremental (:mod:`kexue.models.title_gen.incremental`: cached states and attention keys).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kexue.models.title_gen.config import Seq2SeqConfig
from kexue.nn import AlignedBiLSTM, MultiHeadAttention, SelfModulatedLayerNorm, masked_max

PAD, UNK, START, END = 0, 1, 2, 3
DIRECTIONS = ("l2r", "r2l")


class SourceEncoder(nn.Module):
    """``LN -> AlignedBiLSTM -> LN -> AlignedBiLSTM`` plus the masked max-pool ``x_max``."""

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.emb_dim)
        self.rnn1 = AlignedBiLSTM(cfg.emb_dim, cfg.enc_hidden)
        self.ln2 = nn.LayerNorm(2 * cfg.enc_hidden)
        self.rnn2 = AlignedBiLSTM(2 * cfg.enc_hidden, cfg.enc_hidden)
        self.output_size = 2 * cfg.enc_hidden

    def forward(self, e: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``e`` (B, L, E) embedded source, ``mask`` (B, L) bool -> (x (B, L, 2H), x_max (B, 2H))."""
        h = self.rnn1(self.ln1(e), mask)  # (B, L, 2H), zeros at padding
        h = self.rnn2(self.ln2(h), mask)  # (B, L, 2H)
        return h, masked_max(h, mask, dim=1)  # (B, L, 2H), (B, 2H)


class DirectionDecoder(nn.Module):
    """One decoding direction: causal LSTM "states" and an attention "head"."""

    def __init__(self, cfg: Seq2SeqConfig, src_dim: int) -> None:
        super().__init__()
        d, c = cfg.dec_hidden, src_dim
        self.norm0 = SelfModulatedLayerNorm(cfg.emb_dim, c, cfg.smln_hidden)
        self.rnn1 = nn.LSTM(cfg.emb_dim, d, batch_first=True)
        self.norm1 = SelfModulatedLayerNorm(d, c, cfg.smln_hidden)
        self.rnn2 = nn.LSTM(d, d, batch_first=True)
        self.norm2 = SelfModulatedLayerNorm(d, c, cfg.smln_hidden)
        self.cross = (MultiHeadAttention(d, d, cfg.heads, cfg.head_dim)
                      if cfg.cross_attention else None)
        self.src_attn = MultiHeadAttention(d, src_dim, cfg.heads, cfg.head_dim)
        n_in = d + self.src_attn.output_size + (self.cross.output_size if self.cross else 0)
        self.out = nn.Linear(n_in, cfg.out_dim)
        self.dropout = nn.Dropout(cfg.dropout)

    def states(self, e: Tensor, x_max: Tensor) -> Tensor:
        """Causal states of embedded target inputs ``e`` (B, T, E) given ``x_max`` (B, C) -> (B, T, D).

        Right padding cannot change valid positions (unidirectional LSTMs), so no mask is needed.
        """
        h = self.norm0(e, x_max)  # (B, T, E)
        h, _ = self.rnn1(h)  # (B, T, D)
        h = self.norm1(h, x_max)
        h, _ = self.rnn2(h)  # (B, T, D)
        return self.norm2(h, x_max)  # (B, T, D)

    def head(self, h: Tensor, x: Tensor, x_mask: Tensor, other: Tensor | None = None,
             other_mask: Tensor | None = None, last_only: bool = False) -> Tensor:
        """Features before the shared classifier.

        Args:
            h: (B, T, D) own states.
            x: (B, Lx, C) encoded source; ``x_mask`` (B, Lx) bool.
            other: (B, T', D) the other direction's states (cross-attention, mask_right).
            other_mask: (B, T') bool, valid positions of ``other``.
            last_only: Compute only the last query position (decoding): it may see every key of
                ``other`` (all are <= the last position), so no causal mask is applied.

        Returns:
            (B, T, out_dim), or (B, 1, out_dim) with ``last_only``.
        """
        q = h[:, -1:] if last_only else h  # (B, Tq, D)
        parts = [q]
        if self.cross is not None:
            if other is None:
                raise ValueError("this decoder has cross-direction attention: pass `other` states")
            parts.append(self.cross(q, other, other, key_mask=other_mask, causal=not last_only))
        parts.append(self.src_attn(q, x, x, key_mask=x_mask))  # (B, Tq, heads*head_dim)
        f = self.out(self.dropout(torch.cat(parts, dim=-1)))  # (B, Tq, out_dim)
        return F.leaky_relu(f, 0.2)


    def pair_head(self, h: Tensor, other: Tensor, other_mask: Tensor, xk: Tensor, xmk: Tensor,
                  N: int, k: int, own_is_row: bool) -> Tensor:
        """:meth:`head` at the last position for all k x k pairs, without redundant work.

        The source attention depends on the own hypothesis only, so it runs on N*k rows and is
        then broadcast; only the cross-direction attention runs on the N*k*k pairs.

        Args:
            h: (N*k, t, D) own states; ``other`` (N*k, t, D) and ``other_mask`` (N*k, t).
            xk: (N*k, Lx, C) source per hypothesis; ``xmk`` (N*k, Lx).
            own_is_row: pair (n, i, j) takes own hypothesis i (L2R) or j (R2L).

        Returns:
            (N*k*k, 1, out_dim) in pair order (n, i, j).
        """
        q = h[:, -1:]  # (N*k, 1, D)
        src = self.src_attn(q, xk, xk, key_mask=xmk)  # (N*k, 1, A)
        own_view, other_view = ((N, k, 1), (N, 1, k)) if own_is_row else ((N, 1, k), (N, k, 1))

        def pairs(z: Tensor, view: tuple[int, int, int]) -> Tensor:
            return z.view(*view, *z.shape[1:]).expand(N, k, k, *z.shape[1:]).reshape(N * k * k, *z.shape[1:])

        q_p = pairs(q, own_view)  # (N*k*k, 1, D)
        parts = [q_p]
        if self.cross is not None:
            o_p, om_p = pairs(other, other_view), pairs(other_mask, other_view)  # (N*k*k, t, D)
            parts.append(self.cross(q_p, o_p, o_p, key_mask=om_p))
        parts.append(pairs(src, own_view))
        f = self.out(self.dropout(torch.cat(parts, dim=-1)))  # (N*k*k, 1, out_dim)
        return F.leaky_relu(f, 0.2)


class Seq2Seq(nn.Module):
    """Encoder + L2R/R2L decoders + shared classifier (+ copy prior). See the module docstring.

    ``cross_attention=False`` is the unidirectional baseline: the same modules without the
    cross-direction attention, so each direction can be decoded (and evaluated) alone.
    """

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        if cfg.vocab_size < 5:
            raise ValueError("Seq2SeqConfig.vocab_size must be set from the vocabulary (>= 5)")
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.emb_dim, padding_idx=PAD)
        self.emb_dropout = nn.Dropout(cfg.dropout)
        self.encoder = SourceEncoder(cfg)
        src_dim = self.encoder.output_size
        self.decoders = nn.ModuleDict({d: DirectionDecoder(cfg, src_dim) for d in DIRECTIONS})
        self.classifier = nn.Linear(cfg.out_dim, cfg.vocab_size)  # shared by both directions
        # ScaleShift of the copy prior (Su: log_scale and shift initialised to zeros).
        self.prior_log_scale = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.prior_shift = nn.Parameter(torch.zeros(cfg.vocab_size))

    @property
    def bidirectional(self) -> bool:
        return self.cfg.cross_attention

    def embed(self, ids: Tensor) -> Tensor:
        return self.emb_dropout(self.embedding(ids))  # (B, L, E)

    # ---------------------------------------------------------------- encoder side
    def encode(self, x: Tensor, x_mask: Tensor | None = None) -> dict[str, Tensor]:
        """Encode source ids ``x`` (B, Lx); ``x_mask`` defaults to ``x != pad``.

        Returns:
            dict with ``x`` (B, Lx, C), ``x_mask`` (B, Lx), ``x_max`` (B, C) and ``prior`` (B, V)
            (zeros when ``copy_prior`` is off). Every tensor has the batch first, so the dict
            can be repeated/indexed row-wise (:func:`index_encoded`).
        """
        x_mask = (x != PAD) if x_mask is None else x_mask.bool()
        h, x_max = self.encoder(self.embed(x), x_mask)
        if self.cfg.copy_prior:
            bag = torch.zeros(x.shape[0], self.cfg.vocab_size, device=x.device, dtype=h.dtype)
            bag.scatter_(1, x.masked_fill(~x_mask, PAD), x_mask.to(h.dtype))  # (B, V), 1 if present
            bag[:, PAD] = 0.0
            prior = torch.exp(self.prior_log_scale) * (bag > 0.5).to(h.dtype) + self.prior_shift
        else:
            prior = torch.zeros(x.shape[0], self.cfg.vocab_size, device=x.device, dtype=h.dtype)
        return {"x": h, "x_mask": x_mask, "x_max": x_max, "prior": prior}

    def logits(self, feats: Tensor, prior: Tensor) -> Tensor:
        """Shared classifier ``feats`` (B, T, O) -> (B, T, V), averaged with the copy prior."""
        out = self.classifier(feats)  # (B, T, V)
        if self.cfg.copy_prior:
            out = (out + prior.unsqueeze(1)) / 2
        return out

    def states(self, enc: dict[str, Tensor], y: Tensor, direction: str) -> Tensor:
        """Causal decoder states of inputs ``y`` (B, T) for ``direction`` -> (B, T, D)."""
        return self.decoders[direction].states(self.embed(y), enc["x_max"])

    # ---------------------------------------------------------------- teacher forcing
    def forward(self, x: Tensor, yl: Tensor, yr: Tensor, yl_ctx: Tensor | None = None,
                yr_ctx: Tensor | None = None, x_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits of both directions.

        Args:
            x: (B, Lx) source ids.
            yl: (B, T) L2R decoder inputs (``[2] + title``, right-padded).
            yr: (B, T) R2L decoder inputs (``[3] + reversed(title)``, right-padded).
            yl_ctx: (B, T) L2R tokens the R2L decoder attends to (default ``yl``: gold, leaky;
                second pass: generated). Ignored by the baseline.
            yr_ctx: (B, T) R2L tokens the L2R decoder attends to (default ``yr``).
            x_mask: optional explicit source mask (default ``x != pad``).

        Returns:
            (logits_l2r (B, T, V), logits_r2l (B, T, V)).
        """
        enc = self.encode(x, x_mask)
        hl = self.states(enc, yl, "l2r")  # (B, T, D)
        hr = self.states(enc, yr, "r2l")  # (B, T, D)
        if self.bidirectional:
            yl_c = yl if yl_ctx is None else yl_ctx
            yr_c = yr if yr_ctx is None else yr_ctx
            hl_c = hl if yl_ctx is None else self.states(enc, yl_ctx, "l2r")
            hr_c = hr if yr_ctx is None else self.states(enc, yr_ctx, "r2l")
            fl = self.decoders["l2r"].head(hl, enc["x"], enc["x_mask"], hr_c, yr_c != PAD)
            fr = self.decoders["r2l"].head(hr, enc["x"], enc["x_mask"], hl_c, yl_c != PAD)
        else:
            fl = self.decoders["l2r"].head(hl, enc["x"], enc["x_mask"])
            fr = self.decoders["r2l"].head(hr, enc["x"], enc["x_mask"])
        return self.logits(fl, enc["prior"]), self.logits(fr, enc["prior"])

    # ---------------------------------------------------------------- decoding steps
    @torch.no_grad()
    def next_probs(self, enc: dict[str, Tensor], y: Tensor, direction: str) -> Tensor:
        """Next-token probabilities of ONE direction alone (baseline only).

        Args:
            enc: encoded source with N rows (one per prefix).
            y: (N, t) prefixes (start id first).
            direction: ``l2r`` or ``r2l``.

        Returns:
            (N, V) probabilities for position t.
        """
        if self.bidirectional:
            raise ValueError("a bidirectional model cannot decode one direction alone; use "
                             "bidirectional_beam_search (or the baseline model)")
        h = self.states(enc, y, direction)  # (N, t, D)
        f = self.decoders[direction].head(h, enc["x"], enc["x_mask"], last_only=True)  # (N, 1, O)
        return torch.softmax(self.logits(f, enc["prior"])[:, 0].float(), dim=-1)  # (N, V)

    @torch.no_grad()
    def pair_next_probs(self, enc_pairs: dict[str, Tensor], yl: Tensor, yr: Tensor) -> tuple[Tensor, Tensor]:
        """Next-token probabilities for all k x k (L2R_i, R2L_j) pairs in one forward.

        Args:
            enc_pairs: encoded source repeated k*k times per example: N*k*k rows ordered
                (n, i, j) (see :func:`kexue.models.title_gen.steppers.repeat_encoded`).
            yl: (N, k, t) L2R hypotheses; ``yr`` (N, k, t) R2L hypotheses.

        Returns:
            (pl, pr), each (N, k, k, V): ``pl[n, i, j]`` = L2R_i's next-token distribution when it
            attends to R2L_j; ``pr[n, i, j]`` = R2L_j's when it attends to L2R_i.
        """
        N, k, t = yl.shape
        Lx = enc_pairs["x"].shape[1]
        # per-hypothesis (N*k rows) views of the pair-repeated source: rows (n, i, j=0)
        xk = enc_pairs["x"].view(N, k, k, Lx, -1)[:, :, 0].reshape(N * k, Lx, -1)
        xmk = enc_pairs["x_mask"].view(N, k, k, Lx)[:, :, 0].reshape(N * k, Lx)
        rows = {"x_max": enc_pairs["x_max"].view(N, k, k, -1)[:, :, 0].reshape(N * k, -1)}
        hl = self.states(rows, yl.reshape(N * k, t), "l2r")  # (N*k, t, D) states once per hyp
        hr = self.states(rows, yr.reshape(N * k, t), "r2l")
        ml, mr = yl.reshape(N * k, t) != PAD, yr.reshape(N * k, t) != PAD
        fl = self.decoders["l2r"].pair_head(hl, hr, mr, xk, xmk, N, k, own_is_row=True)
        fr = self.decoders["r2l"].pair_head(hr, hl, ml, xk, xmk, N, k, own_is_row=False)
        prior = enc_pairs["prior"]  # (N*k*k, V)
        pl = torch.softmax(self.logits(fl, prior)[:, 0].float(), dim=-1)  # (N*k*k, V)
        pr = torch.softmax(self.logits(fr, prior)[:, 0].float(), dim=-1)
        return pl.view(N, k, k, -1), pr.view(N, k, k, -1)


def index_encoded(enc: dict[str, Any], index: Tensor) -> dict[str, Any]:
    """Select rows ``index`` of every batch-first tensor of an encoded-source dict."""
    return {key: (v.index_select(0, index) if isinstance(v, Tensor) else v) for key, v in enc.items()}
