"""Character vocabulary: chars seen ``>= min_count`` times in KB descriptions + train texts.

Id 0 = padding, 1 = unknown (``el.py``). Ordering is deterministic (frequency, then char).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

PAD, UNK = 0, 1


class CharVocab:
    """Char -> id table.

    Args:
        chars: Vocabulary chars in id order (ids start at 2).
    """

    def __init__(self, chars: Iterable[str]) -> None:
        self.chars = list(chars)
        self.char2id = {c: i + 2 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        """Embedding rows needed (pad + unk + chars)."""
        return len(self.chars) + 2

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 2) -> CharVocab:
        """Count the chars of ``texts`` (already lowercased) and keep those seen ``>= min_count``."""
        counts: Counter = Counter()
        for text in texts:
            counts.update(text)
        kept = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
        return cls(kept)

    def encode(self, text: str) -> list[int]:
        """Ids of the chars of ``text`` (unknown -> 1)."""
        get = self.char2id.get
        return [get(c, UNK) for c in text]
