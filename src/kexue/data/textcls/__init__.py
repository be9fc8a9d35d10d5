"""Text-classification data: readers for CLUE TNEWS / IFLYTEK, FewCLUE IFLYTEK and ChnSentiCorp
exactly as published (pure ``parse_*`` functions on bytes + read-only lazy Kedro datasets), the
shared :class:`TextRecords` / :class:`LabelSpace` types, leakage checks, and the embedded
generated default task (:func:`generate_task`)."""

from kexue.data.textcls.chnsenticorp import ChnSentiCorpDataset, parse_chnsenticorp
from kexue.data.textcls.clue import ClueDataset, parse_clue
from kexue.data.textcls.generate import generate_task
from kexue.data.textcls.records import (
    FRAME_COLUMNS,
    REJECT_REASONS,
    LabelSpace,
    RawTextSplits,
    TextFormatError,
    TextRecords,
    duplicates,
    overlap,
)

__all__ = ["FRAME_COLUMNS", "REJECT_REASONS", "ChnSentiCorpDataset", "ClueDataset", "LabelSpace",
           "RawTextSplits", "TextFormatError", "TextRecords", "duplicates", "generate_task",
           "overlap", "parse_chnsenticorp", "parse_clue"]
