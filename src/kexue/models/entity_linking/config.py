"""Config dataclasses of the entity-linking model (built from ``params:entity_linking.*``).

Defaults are the reduced CPU settings; Su's full settings (``conf/gpu``): char_size 128,
hidden_size 64 (BiLSTM 64x2), conv_size 128, dense_size 128, batch 64, 120 epochs, Adam 1e-3,
EMA 0.9999.
"""

from __future__ import annotations

from dataclasses import dataclass

from kexue.config import require_at_least, require_dropout


@dataclass
class ModelConfig:
    """Joint NER + binary-matching model.

    Attributes:
        char_size: Char embedding size (Su: 128).
        hidden_size: Units per direction of every BiLSTM (Su: 64 = char_size // 2).
        conv_size: Channels of the NER Conv1D (k=3, relu) (Su: 128).
        dense_size: Hidden units of the matcher's Dense relu (Su: 128).
        heads: Cross-attention heads (Su: 8).
        head_dim: Size per head (Su: 16).
        dropout: Dropout after the embeddings and before the matcher's Dense (Su: 0.2).
        min_char_count: Keep chars seen at least this often (KB descriptions + train texts).
        word_vectors: Use fixed word vectors (word2vec *text* format, ``word v1 v2 ...``) read
            through the catalog entry ``entity_linking_word_vectors``
            (``data/01_raw/word_vectors/word2vec.txt``). When on, texts and descriptions are
            jieba-segmented, each word vector is repeated over its chars (fixed, not fine-tuned)
            and added through ``Dense(char_size, no bias)``.
        max_words: Read at most this many word vectors (``null`` = all).
        max_desc_len: Descriptions are truncated to this many chars for the encoder
            (the hand features still look at the full description).
    """

    char_size: int = 32
    hidden_size: int = 16
    conv_size: int = 32
    dense_size: int = 32
    heads: int = 8
    head_dim: int = 16
    dropout: float = 0.2
    min_char_count: int = 2
    word_vectors: bool = False
    max_words: int | None = None
    max_desc_len: int = 64

    def validate(self) -> None:
        require_at_least(self, 1, "char_size", "hidden_size", "conv_size", "dense_size", "heads",
                         "head_dim", "max_desc_len", "min_char_count")
        require_dropout(self)


DESCRIPTION_CACHE_MIB = 512  # default budget of inference's encoded-description cache


@dataclass
class DataConfig:
    """Training batches.

    Attributes:
        batch_size: Texts per batch (Su: 64); each gives one (mention, candidate) pair.
        eval_batch_size: Texts / (mention, candidate) pairs per inference batch.
        max_train_texts: Use at most this many train texts (``null`` = all); a CPU budget knob.
        max_dev_texts: Evaluate on at most this many dev texts (``null`` = all).
        max_predict_texts: Link at most this many prediction texts (``null`` = all).
        torch_threads: CPU intra-op threads while the entity-linking nodes run (restored after).
            The tensors are tiny and the LSTMs sequential, so 1 thread is fastest (2 threads
            were 7x slower per step on a busy 2-core box); ``null`` keeps torch's default.
        description_cache_mib: Memory budget (MiB, on the model's device) of the encoded
            descriptions kept across texts by inference (``DescriptionCache``); when a call
            would exceed it the cache is emptied and refilled. One entry is
            ``max_desc_len * 2 * hidden_size * 4`` bytes (8 KiB at the CPU defaults, 256 KiB at
            Su's sizes, so 512 MiB hold 64k / 2k descriptions).
    """

    batch_size: int = 64
    eval_batch_size: int = 128
    max_train_texts: int | None = None
    max_dev_texts: int | None = None
    max_predict_texts: int | None = None
    torch_threads: int | None = 1
    description_cache_mib: int = DESCRIPTION_CACHE_MIB

    def validate(self) -> None:
        require_at_least(self, 1, "batch_size", "eval_batch_size", "description_cache_mib")
        caps = ("max_train_texts", "max_dev_texts", "max_predict_texts")
        require_at_least(self, 1, *(n for n in caps if getattr(self, n) is not None))


@dataclass
class DecodeConfig:
    """Inference thresholds.

    Attributes:
        ner_threshold: Start/end probability threshold (Su: 0.4).
        link_threshold: Drop a mention whose best candidate scores below this (Su: 0.1).
    """

    ner_threshold: float = 0.4
    link_threshold: float = 0.1

    def validate(self) -> None:
        if not (0.0 <= self.ner_threshold <= 1.0 and 0.0 <= self.link_threshold <= 1.0):
            raise ValueError("thresholds must be probabilities in [0, 1]")
