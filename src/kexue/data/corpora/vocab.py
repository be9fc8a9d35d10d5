"""Character vocabulary for seq2seq title generation (Su's ``seq2seq_bidecoder.py`` convention).

Ids 0..3 are reserved: ``0 pad``, ``1 unk``, ``2 start``, ``3 end``; then every character whose
frequency in the counted texts is ``>= min_freq``, most frequent first (ties by code point, so the
order is deterministic). Su keeps chars with frequency >= 32 on THUCNews.

Example:
    >>> v = CharVocab.from_texts(["abca", "ab"], min_freq=2)
    >>> v.itos
    ['<pad>', '<unk>', '<start>', '<end>', 'a', 'b']
    >>> v.encode("abc")
    [4, 5, 1]
    >>> v.encode("ab", 5, add_start=True, add_end=True, pad=True)
    [2, 4, 5, 3, 0]
    >>> v.decode([2, 4, 5, 3, 4])
    'ab'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<unk>", "<start>", "<end>")
SPECIAL_IDS: dict[str, int] = {"pad": 0, "unk": 1, "start": 2, "end": 3}


class CharVocab:
    """Character <-> id table with the four reserved ids (pad 0, unk 1, start 2, end 3).

    Args:
        itos: Id -> token list; the first four entries must be the special tokens.
        min_freq: Minimum frequency used to build it (kept for reports/serialisation).
        counts: Optional char -> training frequency of the kept chars (for reports).
    """

    def __init__(self, itos: Sequence[str], min_freq: int = 1,
                 counts: Mapping[str, int] | None = None) -> None:
        itos = list(itos)
        if tuple(itos[:4]) != SPECIAL_TOKENS:
            raise ValueError(f"itos must start with the special tokens {list(SPECIAL_TOKENS)}, "
                             f"got {itos[:4]}")
        chars = itos[4:]
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"vocabulary entries after the specials must be single characters, "
                             f"got {bad[:5]}")
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary contains duplicate characters")
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(itos) if i >= 4}
        self.min_freq = int(min_freq)
        self.counts: dict[str, int] = dict(counts or {})

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_texts(cls, texts: Iterable[str], min_freq: int = 1) -> CharVocab:
        """Count characters over ``texts`` and keep those with frequency ``>= min_freq``."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counter: Counter[str] = Counter()
        for text in texts:
            counter.update(text)
        kept = sorted((c for c, n in counter.items() if n >= min_freq),
                      key=lambda c: (-counter[c], c))
        return cls([*SPECIAL_TOKENS, *kept], min_freq=min_freq,
                   counts={c: counter[c] for c in kept})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``itos``, ``specials``, ``min_freq``, ``size`` (+ ``counts``)."""
        return {"itos": list(self.itos), "specials": dict(SPECIAL_IDS),
                "min_freq": self.min_freq, "size": len(self), "counts": dict(self.counts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CharVocab:
        """Inverse of :meth:`to_dict` (extra keys such as report fields are ignored)."""
        if "itos" not in data:
            raise ValueError("vocabulary dict has no 'itos' list (was it written by CharVocab?)")
        specials = data.get("specials", SPECIAL_IDS)
        if dict(specials) != SPECIAL_IDS:
            raise ValueError(f"vocabulary specials {dict(specials)} differ from {SPECIAL_IDS}")
        return cls(data["itos"], min_freq=int(data.get("min_freq", 1)),
                   counts=data.get("counts"))

    # ------------------------------------------------------------------ ids
    @property
    def pad_id(self) -> int:
        return SPECIAL_IDS["pad"]

    @property
    def unk_id(self) -> int:
        return SPECIAL_IDS["unk"]

    @property
    def start_id(self) -> int:
        return SPECIAL_IDS["start"]

    @property
    def end_id(self) -> int:
        return SPECIAL_IDS["end"]

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, char: object) -> bool:
        return char in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"CharVocab(size={len(self)}, min_freq={self.min_freq})"

    # ------------------------------------------------------------------ encode / decode
    def encode(self, text: str, max_len: int | None = None, *, add_start: bool = False,
               add_end: bool = False, pad: bool = False) -> list[int]:
        """Map ``text`` to ids (unknown chars -> ``unk_id``).

        Args:
            text: The string; each character is one token.
            max_len: Maximum length of the result *including* start/end; the text is truncated
                (from the right) so that the specials always fit. ``None``: no limit.
            add_start: Prepend ``start_id`` (L2R decoder input, Su's ``[2] + title``).
            add_end: Append ``end_id``.
            pad: Right-pad with ``pad_id`` up to ``max_len`` (needs ``max_len``).

        Returns:
            The list of ids.
        """
        n_special = int(add_start) + int(add_end)
        if max_len is not None and max_len < n_special:
            raise ValueError(f"max_len={max_len} cannot hold the {n_special} start/end ids")
        if pad and max_len is None:
            raise ValueError("pad=True needs max_len")
        body = text if max_len is None else text[: max_len - n_special]
        ids = [self.stoi.get(c, SPECIAL_IDS["unk"]) for c in body]
        if add_start:
            ids.insert(0, self.start_id)
        if add_end:
            ids.append(self.end_id)
        if pad and max_len is not None:
            ids.extend([self.pad_id] * (max_len - len(ids)))
        return ids

    def encode_batch(self, texts: Sequence[str], max_len: int | None = None, *,
                     add_start: bool = False, add_end: bool = False) -> list[list[int]]:
        """Encode and right-pad every text to a common length (``max_len`` or the longest)."""
        rows = [self.encode(t, max_len, add_start=add_start, add_end=add_end) for t in texts]
        width = max_len if max_len is not None else max((len(r) for r in rows), default=0)
        return [r + [self.pad_id] * (width - len(r)) for r in rows]

    def decode(self, ids: Iterable[int], *, unk: str = "") -> str:
        """Ids -> text: skips ``start``, stops at the first ``end`` or ``pad``.

        Args:
            ids: Token ids (a list, or a 1-D tensor's ``.tolist()``).
            unk: What to emit for ``unk_id`` (dropped by default, like the other specials).
        """
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i in (self.end_id, self.pad_id):
                break
            if i == self.start_id:
                continue
            if i == self.unk_id:
                out.append(unk)
                continue
            if 0 <= i < len(self.itos):
                out.append(self.itos[i])
            else:
                raise ValueError(f"id {i} is outside the vocabulary (size {len(self)})")
        return "".join(out)

    def unk_rate(self, texts: Iterable[str]) -> float:
        """Fraction of characters in ``texts`` that map to ``unk`` (0.0 for no characters)."""
        total = unknown = 0
        for text in texts:
            total += len(text)
            unknown += sum(1 for c in text if c not in self.stoi)
        return unknown / total if total else 0.0
