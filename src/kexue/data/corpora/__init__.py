"""Title-generation corpora: raw readers (CSL, LCSTS, THUCNews), the embedded default generator,
the character vocabulary and the pandera schemas of the output tables.

H's seq2seq code only needs :class:`CharVocab` (``from kexue.data.corpora import CharVocab``).
"""

from kexue.data.corpora.generate import default_title_lines, generate_title_pairs
from kexue.data.corpora.readers import (
    RawCorpus,
    RawCorpusDataset,
    RawPair,
    Reject,
    parse_pair_lines,
    parse_thucnews_article,
)
from kexue.data.corpora.schemas import RejectsSchema, TitlePairsSchema
from kexue.data.corpora.vocab import SPECIAL_IDS, SPECIAL_TOKENS, CharVocab

__all__ = [
    "SPECIAL_IDS",
    "SPECIAL_TOKENS",
    "CharVocab",
    "RawCorpus",
    "RawCorpusDataset",
    "RawPair",
    "Reject",
    "RejectsSchema",
    "TitlePairsSchema",
    "default_title_lines",
    "generate_title_pairs",
    "parse_pair_lines",
    "parse_thucnews_article",
]
