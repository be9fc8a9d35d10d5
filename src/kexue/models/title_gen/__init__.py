"""Seq2seq title generation with bidirectional decoding (kexue.fm post 6877).

Modules: ``config`` (dataclasses), ``model`` (encoder, decoders, :class:`Seq2Seq`), ``module``
(LightningModule), ``batching`` (collate), ``beam`` (greedy / beam / bidirectional beam search),
``metrics`` (char ROUGE / BLEU / exact match).
"""

from kexue.models.title_gen.config import DataConfig, DecodeConfig, SecondPassConfig, Seq2SeqConfig
from kexue.models.title_gen.model import Seq2Seq

__all__ = ["DataConfig", "DecodeConfig", "SecondPassConfig", "Seq2Seq", "Seq2SeqConfig"]
