from collections import Counter

import numpy as np

from kexue.data.textcls import FRAME_COLUMNS, duplicates, generate_task, overlap


def _naive_bayes_accuracy(train, dev, alpha=1.0):
    """Multinomial naive Bayes on character counts, written here to stay independent."""
    n_classes = len(train.labels)
    counts = [Counter() for _ in range(n_classes)]
    for text, y in zip(train.frame["text"], train.frame["label"], strict=True):
        counts[y].update(text)
    vocab = sorted(set().union(*counts))
    index = {c: i for i, c in enumerate(vocab)}
    table = np.array([[counts[k][c] for c in vocab] for k in range(n_classes)], dtype=float)
    log_p = np.log(table + alpha) - np.log((table + alpha).sum(1, keepdims=True))
    prior = np.log(np.bincount(train.frame["label"], minlength=n_classes) / len(train))
    right = 0
    for text, y in zip(dev.frame["text"], dev.frame["label"], strict=True):
        ids = [index[c] for c in text if c in index]
        right += int(np.argmax(prior + log_p[:, ids].sum(1)) == y)
    return right / len(dev)


def test_deterministic_and_shaped():
    a, b = generate_task(seed=3), generate_task(seed=3)
    assert a["train"].frame.equals(b["train"].frame) and a["dev"].frame.equals(b["dev"].frame)
    assert not a["train"].frame["text"].equals(generate_task(seed=4)["train"].frame["text"])
    train, dev = a["train"], a["dev"]
    assert (len(train), len(dev), train.read, len(train.rejects)) == (3000, 600, 3000, 0)
    assert list(train.frame.columns) == list(FRAME_COLUMNS)
    assert set(train.frame["file"]) == {"<embedded:textcls>"}
    assert train.frame["line"].tolist() == list(range(1, 3001))
    assert train.labels.names == [f"topic_{k}" for k in range(5)] and dev.split == "dev"
    lengths = train.frame["text"].str.len()
    assert lengths.min() >= 8 and lengths.max() <= 30


def test_no_duplicates_and_balanced():
    task = generate_task()
    train, dev = task["train"], task["dev"]
    assert overlap(train, dev)["rows"] == 0 and duplicates(train) == 0 and duplicates(dev) == 0
    share = train.frame["label"].value_counts(normalize=True)
    assert len(share) == 5 and share.min() > 0.16 and share.max() < 0.24


def test_learnable_but_not_trivial():
    task = generate_task()
    acc = _naive_bayes_accuracy(task["train"], task["dev"])
    assert 0.55 < acc < 0.9, acc  # chance is 0.2; 10% label noise caps it near 0.9


def test_parameters():
    task = generate_task(n_train=200, n_dev=50, n_classes=3, seed=1, length=(5, 6))
    assert len(task["train"]) == 200 and len(task["dev"]) == 50
    assert set(task["train"].frame["label"]) == {0, 1, 2}
    assert task["dev"].frame["text"].str.len().between(5, 6).all()
