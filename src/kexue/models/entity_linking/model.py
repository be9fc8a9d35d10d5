"""nn.Modules of Su's joint NER + entity-linking model (``el.py``), in PyTorch.

Shapes: ``B`` batch, ``L`` query length, ``M`` description length, ``D = char_size``,
``H = hidden_size`` (per direction). Masks are bool, True = valid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kexue.models.entity_linking.config import ModelConfig
from kexue.nn import AlignedBiLSTM, MultiHeadAttention, masked_max, masked_mean

NUM_SPAN_FEATURES = 4  # [span 0/1, f1, f2, f3]


class CharWordEmbedding(nn.Module):
    """Char embedding (+ fixed word vectors through a bias-free Dense), then dropout.

    ``self.embedding`` is the ``nn.Embedding`` that FGM / GP perturb.
    """

    def __init__(self, vocab_size: int, cfg: ModelConfig, word_vectors: Tensor | None = None) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, cfg.char_size, padding_idx=0)
        self.word_embedding: nn.Embedding | None = None
        self.word_proj: nn.Linear | None = None
        if word_vectors is not None:  # row 0 = unknown word (zeros); not fine-tuned
            self.word_embedding = nn.Embedding.from_pretrained(word_vectors.float(), freeze=True)
            self.word_proj = nn.Linear(word_vectors.shape[1], cfg.char_size, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, chars: Tensor, words: Tensor | None = None) -> Tensor:
        x = self.embedding(chars)  # (B, L, D)
        if self.word_embedding is not None and self.word_proj is not None:
            if words is None:
                raise ValueError("the model was built with word vectors: pass word ids per char")
            x = x + self.word_proj(self.word_embedding(words))
        return self.dropout(x)


class JointLinker(nn.Module):
    """Shared char encoder, half-pointer NER heads and the binary (mention, entity) matcher."""

    def __init__(self, vocab_size: int, cfg: ModelConfig, word_vectors: Tensor | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        D, H = cfg.char_size, cfg.hidden_size
        self.embed = CharWordEmbedding(vocab_size, cfg, word_vectors)
        # NER ("半指针半标注"): [emb, pres1, pres2] -> BiLSTM -> Conv1D(k=3, relu) -> 2 sigmoid heads
        self.ner_lstm = AlignedBiLSTM(D + 2, H)
        self.conv = nn.Conv1d(2 * H, cfg.conv_size, kernel_size=3, padding=1)
        self.start_head = nn.Linear(cfg.conv_size, 1)
        self.end_head = nn.Linear(cfg.conv_size, 1)
        # matcher
        self.query_lstm = AlignedBiLSTM(2 * H + NUM_SPAN_FEATURES, H)
        self.desc_lstm = AlignedBiLSTM(D, H)
        self.attn_qd = MultiHeadAttention(2 * H, 2 * H, heads=cfg.heads, head_dim=cfg.head_dim)
        self.attn_dq = MultiHeadAttention(2 * H, 2 * H, heads=cfg.heads, head_dim=cfg.head_dim)
        inner = cfg.heads * cfg.head_dim
        self.match_dropout = nn.Dropout(cfg.dropout)
        self.match_hidden = nn.Linear(2 * inner + 2 * H, cfg.dense_size)
        self.match_out = nn.Linear(cfg.dense_size, 1)

    def encode(self, chars: Tensor, pres1: Tensor, pres2: Tensor, words: Tensor | None = None,
               lengths: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """NER pass.

        Args:
            chars: ``(B, L)`` char ids (0 = padding).
            pres1, pres2: ``(B, L)`` 0/1 max-match start / end (inclusive) indicators.
            words: ``(B, L)`` word ids per char, when the model uses word vectors.
            lengths: ``(B,)`` CPU text lengths when known on the host (no device wait in the
                BiLSTM); ``None`` reads them from ``chars``.

        Returns:
            ``h (B, L, 2H)`` BiLSTM states, ``p_start (B, L)`` and ``p_end (B, L)`` probabilities,
            already multiplied by ``pres1`` / ``pres2`` (the model only filters max-match spans).
        """
        mask = chars > 0  # (B, L)
        x = self.embed(chars, words)  # (B, L, D)
        x = torch.cat([x, pres1.unsqueeze(-1).to(x.dtype), pres2.unsqueeze(-1).to(x.dtype)], -1)
        x = x * mask.unsqueeze(-1)
        h = self.ner_lstm(x, mask, lengths=lengths)  # (B, L, 2H), zeros at padding
        c = F.relu(self.conv(h.transpose(1, 2))).transpose(1, 2)  # (B, L, C)
        p_start = torch.sigmoid(self.start_head(c)).squeeze(-1) * pres1  # (B, L)
        p_end = torch.sigmoid(self.end_head(c)).squeeze(-1) * pres2  # (B, L)
        return h, p_start, p_end

    def encode_query(self, h: Tensor, mask: Tensor, span_feats: Tensor,
                     lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Pair side of the matcher: the query BiLSTM over ``[h, span features]``.

        Args:
            h: ``(B, L, 2H)`` NER BiLSTM states of the query.
            mask: ``(B, L)`` query mask.
            span_feats: ``(B, L, 4)`` ``[span 0/1, f1, f2, f3]``.
            lengths: ``(B,)`` CPU query lengths when known on the host (no device wait in the
                BiLSTM); ``None`` reads them from ``mask``.

        Returns:
            ``q (B, L, 2H)`` query states and ``ys (B, 2H)``, their mean over the span.
        """
        q = self.query_lstm(torch.cat([h, span_feats.to(h.dtype)], -1), mask,
                            lengths=lengths)  # (B, L, 2H)
        span = (span_feats[..., 0] > 0) & mask  # (B, L)
        return q, masked_mean(q, span, dim=1)  # (B, L, 2H), (B, 2H)

    def encode_description(self, desc: Tensor, desc_words: Tensor | None = None,
                           lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Entity side of the matcher: embedding + description BiLSTM.

        Args:
            desc: ``(B, M)`` description char ids (0 = padding).
            desc_words: ``(B, M)`` description word ids per char (word-vector models only).
            lengths: ``(B,)`` CPU lengths of the descriptions when known on the host (no
                device wait in the BiLSTM); ``None`` reads them from ``desc``.

        Returns:
            ``d (B, M, 2H)`` states (zeros at padding) and ``d_mask (B, M)``.
        """
        d_mask = desc > 0  # (B, M)
        d = self.embed(desc, desc_words) * d_mask.unsqueeze(-1)  # (B, M, D)
        return self.desc_lstm(d, d_mask, lengths=lengths), d_mask  # (B, M, 2H), (B, M)

    def match_head(self, q: Tensor, mask: Tensor, ys: Tensor, z_qd: Tensor, z_dq: Tensor
                   ) -> Tensor:
        """Logit from the pooled cross attentions ``z_qd, z_dq (B, heads*head_dim)`` and ``ys``."""
        z = torch.cat([z_qd, z_dq, ys], -1)  # (B, 2*inner + 2H)
        z = F.relu(self.match_hidden(self.match_dropout(z)))  # (B, dense)
        return self.match_out(z).squeeze(-1)  # (B,)

    def match_logit(self, h: Tensor, mask: Tensor, span_feats: Tensor, desc: Tensor,
                    desc_words: Tensor | None = None) -> Tensor:
        """Binary matcher logit for (query span, candidate description) pairs.

        :meth:`encode_query`, :meth:`encode_description`, the two cross attentions and
        :meth:`match_head`, in this order (training depends on it: same ops, same dropout draws).
        Inference encodes each description once instead
        (:mod:`kexue.models.entity_linking.inference`).

        Args:
            h: ``(B, L, 2H)`` NER BiLSTM states of the query.
            mask: ``(B, L)`` query mask.
            span_feats: ``(B, L, 4)`` ``[span 0/1, f1, f2, f3]``.
            desc: ``(B, M)`` description char ids (0 = padding).
            desc_words: ``(B, M)`` description word ids per char (word-vector models only).

        Returns:
            ``(B,)`` logits; ``sigmoid`` gives the probability that the entity is the gold link.
        """
        q, ys = self.encode_query(h, mask, span_feats)  # (B, L, 2H), (B, 2H)
        d, d_mask = self.encode_description(desc, desc_words)  # (B, M, 2H), (B, M)
        qd = self.attn_qd(q, d, d, key_mask=d_mask, query_mask=mask)  # (B, L, 8*16)
        dq = self.attn_dq(d, q, q, key_mask=mask, query_mask=d_mask)  # (B, M, 8*16)
        return self.match_head(q, mask, ys, masked_max(qd, mask, dim=1),
                               masked_max(dq, d_mask, dim=1))
