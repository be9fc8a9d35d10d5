import numpy as np
import pandas as pd
import pytest

from kexue.data.rejects import empty_rejects
from kexue.data.textcls import (
    FRAME_COLUMNS,
    LabelSpace,
    TextFormatError,
    TextRecords,
    duplicates,
    overlap,
)
from kexue.data.textcls.records import iter_lines, records_frame, reject_rows

LABELS = LabelSpace(["100", "101"], ["a", "b"])


def _records(texts, split="train"):
    rows = [("f", i + 1, t, 0, "100", "a") for i, t in enumerate(texts)]
    return TextRecords(records_frame(rows), LABELS, split)


def test_label_space_from_labels_json():
    data = b'{"label": "100", "label_desc": "news_story"}\n\n{"label": "102", "label_des": "x"}'
    space = LabelSpace.from_labels_json(data)
    assert space.ids == ["100", "102"] and space.names == ["news_story", "x"]
    assert space.index("102") == 1 and "101" not in space and len(space) == 2
    with pytest.raises(KeyError):
        space.index("101")


@pytest.mark.parametrize("data", [b'{"label": "1"}', b"not json", b"", b'{"label": "1", '
                                  b'"label_desc": "a"}\n{"label": "1", "label_desc": "b"}'])
def test_label_space_bad_file_raises(data):
    with pytest.raises(TextFormatError, match="labels.json"):
        LabelSpace.from_labels_json(data)


def test_records_read_must_balance():
    rec = _records(["x", "y"])
    assert rec.read == 2 and list(rec.frame.columns) == list(FRAME_COLUMNS)
    assert rec.frame["label"].dtype == np.int64 and rec.frame["line"].dtype == np.int64
    rejects = reject_rows([("f", 3, "empty_text", "", "")])
    assert TextRecords(rec.frame, LABELS, "train", rejects, read=3).read == 3
    with pytest.raises(ValueError, match="read 5"):
        TextRecords(rec.frame, LABELS, "train", empty_rejects(), read=5)
    with pytest.raises(ValueError, match="labels outside"):
        TextRecords(records_frame([("f", 1, "x", 2, "9", "?")]), LABELS, "train")
    with pytest.raises(ValueError, match="columns"):
        TextRecords(pd.DataFrame({"text": ["x"]}), LABELS, "train")


def test_overlap_and_duplicates():
    train = _records(["a", "b", "b", "c"])
    dev = _records(["b", "d", "b", "a", "e"], "dev")
    o = overlap(train, dev)
    assert o["rows"] == 3 and o["distinct"] == 2
    assert o["keep"].tolist() == [False, True, False, False, True]
    assert o["keep_index"].tolist() == [1, 4]
    assert duplicates(train) == 1 and duplicates(dev) == 1


def test_iter_lines():
    lines = list(iter_lines(b"\xef\xbb\xbfa\r\nb\xff\n\nc"))
    assert [(n, t) for n, t, _ in lines] == [(1, "a"), (2, "b\ufffd"), (3, ""), (4, "c")]
    assert [e is not None for _, _, e in lines] == [False, True, False, False]
    assert list(iter_lines(b"")) == [] and len(list(iter_lines(b"x\n"))) == 1
