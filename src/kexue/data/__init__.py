"""Reusable data code: corpus readers, generators, vocabularies, the shared rejects table
(no Kedro wiring). Subpackages: ``kexue.data.ccks``, ``kexue.data.corpora``,
``kexue.data.images`` (MNIST / Fashion-MNIST IDX, CIFAR-10, image folders, the embedded digit
tables); module ``kexue.data.rejects``."""

from kexue.data.rejects import REJECT_COLUMNS, RejectsSchema, count_by_reason, rejects_frame

__all__ = ["REJECT_COLUMNS", "RejectsSchema", "count_by_reason", "rejects_frame"]
