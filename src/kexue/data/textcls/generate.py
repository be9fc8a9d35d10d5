"""The embedded default text-classification task: deterministic synthetic Chinese "topics".

Construction (``numpy.random.default_rng(seed)``, nothing read from disk):

1. Alphabet: :data:`CHARS` (common Chinese characters). Each class ``c`` owns ``signal_chars``
   (default 4) characters of its own; the next ``n_filler`` (default 300) characters are filler
   shared by all classes.
2. A record of class ``c`` has a length drawn uniformly from ``length`` (inclusive). Each position
   is, with probability ``p_signal``, a signal character -- of class ``c`` with probability
   ``p_own``, otherwise of a uniformly drawn class (a confusable cue) -- and otherwise a filler
   character drawn from a Zipf-like (``1 / rank``) distribution. So a short record may carry no
   cue of its class at all, and cues of other classes appear too: the task is learnable by a
   character model but not trivially separable.
3. True classes are balanced (``i % n_classes``, shuffled); then ``noise`` (default 10%) of the
   labels are replaced by a different, uniformly drawn class (in train AND dev, as in real data),
   which caps dev accuracy near ``1 - noise``.
4. Texts are unique across train and dev (a repeated text is redrawn), so there is no leakage.

With the defaults a char-count multinomial naive Bayes reaches about 0.78-0.81 dev accuracy
(seeds 0, 1; the test suite checks 0.55-0.9). Records: file ``<embedded:textcls>``, ``line`` =
1-based index inside the split, label ids ``"0".."C-1"``, names ``topic_0 ..``.
"""

from __future__ import annotations

import numpy as np

from kexue.data.textcls.records import LabelSpace, TextRecords, records_frame

EMBEDDED_FILE = "<embedded:textcls>"
CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产"
    "种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从"
    "业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又"
    "么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位"
    "入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放"
    "决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受"
    "联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离"
    "华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复"
    "容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值"
    "号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参"
    "红细引听该铁价严"
)


def generate_task(n_train: int = 3000, n_dev: int = 600, n_classes: int = 5, seed: int = 0,
                  length: tuple[int, int] = (8, 30), *, signal_chars: int = 4,
                  n_filler: int = 300, p_signal: float = 0.2, p_own: float = 0.75,
                  noise: float = 0.1) -> dict[str, TextRecords]:
    """``{"train": TextRecords, "dev": TextRecords}`` of the synthetic task (see the module doc)."""
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    lo, hi = int(length[0]), int(length[1])
    if not 1 <= lo <= hi:
        raise ValueError(f"length must be (min, max) with 1 <= min <= max, got {length}")
    need = n_classes * signal_chars + n_filler
    if need > len(CHARS):
        raise ValueError(f"{n_classes} classes x {signal_chars} signal chars + {n_filler} filler "
                         f"need {need} characters; the alphabet has {len(CHARS)}")
    rng = np.random.default_rng(seed)
    signal = np.array(list(CHARS[: n_classes * signal_chars])).reshape(n_classes, signal_chars)
    filler = np.array(list(CHARS[n_classes * signal_chars: need]))
    zipf = 1.0 / np.arange(1, n_filler + 1)
    zipf /= zipf.sum()
    labels = LabelSpace([str(c) for c in range(n_classes)],
                        [f"topic_{c}" for c in range(n_classes)])
    seen: set[str] = set()

    def one(c: int) -> str:
        while True:
            n = int(rng.integers(lo, hi + 1))
            chars = filler[rng.choice(n_filler, size=n, p=zipf)]
            is_sig = rng.random(n) < p_signal
            k = int(is_sig.sum())
            if k:
                cls = np.where(rng.random(k) < p_own, c, rng.integers(0, n_classes, size=k))
                chars[is_sig] = signal[cls, rng.integers(0, signal_chars, size=k)]
            text = "".join(chars)
            if text not in seen:
                seen.add(text)
                return text

    out = {}
    for split, n in (("train", n_train), ("dev", n_dev)):
        true = rng.permutation(np.arange(n) % n_classes)
        texts = [one(int(c)) for c in true]
        flip = rng.random(n) < noise
        shift = rng.integers(1, n_classes, size=n)
        label = np.where(flip, (true + shift) % n_classes, true)
        rows = [(EMBEDDED_FILE, i + 1, t, int(y), labels.ids[y], labels.names[y])
                for i, (t, y) in enumerate(zip(texts, label, strict=True))]
        out[split] = TextRecords(records_frame(rows), labels, split, read=n)
    return out
