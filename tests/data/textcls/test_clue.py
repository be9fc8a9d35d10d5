import json

import pytest
from kedro.io import DatasetError

from kexue.data.rejects import count_by_reason
from kexue.data.textcls import ClueDataset, LabelSpace, duplicates, overlap, parse_clue

from .conftest import REAL, real_data

LABELS = LabelSpace(["100", "101", "102"], ["news_story", "news_culture", "news_ent"])


def _line(label, sentence, name=None, **extra):
    obj = {"label": label, "label_desc": name or LABELS.names[LABELS.index(str(label))]
           if str(label) in LABELS else "x", "sentence": sentence, **extra}
    return json.dumps(obj, ensure_ascii=False).encode()


def test_parse_clue_bad_lines_with_line_numbers():
    lines = [
        _line("100", "第一条"),                                   # 1 ok
        b'{"label": "101", "sentence": "\xff\xfe"}',              # 2 invalid utf-8
        b'{"label": "101", "sentence": ',                         # 3 invalid json
        b'["101", "x"]',                                           # 4 json, not an object
        b'{"label": "101", "keywords": ""}',                      # 5 no sentence
        b'{"sentence": "abc"}',                                    # 6 no label
        _line("102", "  "),                                        # 7 empty text
        _line("109", "未知类别"),                                   # 8 unknown label
        b"",                                                       # 9 blank line
        _line("101", "名字不对", name="news_sports"),              # 10 label name mismatch
        _line(102, "整数标签"),                                     # 11 ok (int id)
        _line("101", "第二条"),                                     # 12 ok
    ]
    rec = parse_clue(b"\n".join(lines) + b"\n", "train.json", LABELS, "train")
    assert rec.read == 12 == len(rec.frame) + len(rec.rejects)
    assert rec.frame["line"].tolist() == [1, 11, 12]
    assert rec.frame["label"].tolist() == [0, 2, 1]
    assert rec.frame["label_id"].tolist() == ["100", "102", "101"]
    assert rec.frame["label_name"].tolist() == ["news_story", "news_ent", "news_culture"]
    assert rec.frame["text"].tolist() == ["第一条", "整数标签", "第二条"]
    got = dict(zip(rec.rejects["line"], rec.rejects["reason"], strict=True))
    assert got == {2: "invalid_utf8", 3: "invalid_json", 4: "invalid_json", 5: "missing_field",
                   6: "missing_field", 7: "empty_text", 8: "unknown_label", 9: "blank_line",
                   10: "label_mismatch"}
    assert set(rec.rejects["file"]) == {"train.json"} and rec.split == "train"


def test_parse_clue_empty_file():
    rec = parse_clue(b"", "dev.json", LABELS, "dev")
    assert rec.read == 0 and len(rec.frame) == 0 and len(rec.rejects) == 0


def test_dataset_is_lazy_and_reports_missing(tmp_path):
    ds = ClueDataset(path=str(tmp_path / "nothing"), task="tnews")
    raw = ds.load()
    assert "labels.json" in raw.unavailable and "train.json" in raw.unavailable
    assert ds.preflight() == raw.unavailable
    with pytest.raises(DatasetError):
        raw.read()
    with pytest.raises(DatasetError, match="read-only"):
        ds.save({})
    with pytest.raises(DatasetError, match="task"):
        ClueDataset(path=str(tmp_path), task="afqmc")


def test_dataset_reads_present_splits(tmp_path):
    (tmp_path / "labels.json").write_bytes(b'{"label": "0", "label_des": "a"}\n'
                                           b'{"label": "1", "label_des": "b"}')
    (tmp_path / "dev.json").write_bytes(b'{"label": "1", "label_des": "b", "sentence": "s"}\n')
    raw = ClueDataset(path=str(tmp_path), task="iflytek").load()
    assert raw.unavailable is None
    splits = raw.read()
    assert list(splits) == ["dev"] and splits["dev"].frame["label"].tolist() == [1]


@real_data
def test_real_tnews():
    splits = ClueDataset(path=str(REAL / "clue_tnews"), task="tnews").load().read()
    train, dev = splits["train"], splits["dev"]
    assert (train.read, len(train), len(train.rejects)) == (53360, 53360, 0)
    assert (dev.read, len(dev), len(dev.rejects)) == (10000, 10000, 0)
    assert len(train.labels) == 15 and train.frame["label"].nunique() == 15
    assert train.labels.ids[0] == "100" and train.labels.names[0] == "news_story"
    counts = train.frame["label_id"].value_counts()
    assert counts["100"] == 1111 and counts["109"] == 5955 and counts["114"] == 257
    assert dev.frame["label_id"].value_counts()["104"] == 956
    # SOURCE.txt: 924 distinct dev sentences also occur in train; they are 1,099 dev rows.
    o = overlap(train, dev)
    assert (o["distinct"], o["rows"]) == (924, 1099)
    assert int(o["keep"].sum()) == 10000 - 1099 == len(o["keep_index"])
    assert duplicates(train) == 53360 - 49726 and duplicates(dev) == 10000 - 9765


@real_data
def test_real_iflytek_dev():
    splits = ClueDataset(path=str(REAL / "clue_iflytek"), task="iflytek").load().read()
    assert list(splits) == ["dev"]  # the official train.json is not in the snapshot
    dev = splits["dev"]
    assert (dev.read, len(dev), len(dev.rejects)) == (2599, 2599, 0)
    assert len(dev.labels) == 119 and dev.frame["label"].nunique() == 119
    assert dev.frame["label_id"].value_counts()["70"] == 388
    assert duplicates(dev) == 2599 - 2549
    # IFLYTEK ids are "0".."118" in labels.json order: id == class index
    assert (dev.frame["label_id"].astype(int) == dev.frame["label"]).all()


@real_data
def test_real_fewclue_iflytek():
    folder = REAL / "clue_iflytek"
    splits = ClueDataset(path=str(folder), task="fewclue_iflytek").load().read()
    train, test = splits["train"], splits["test"]
    assert (train.read, len(train), count_by_reason(train.rejects)) == (3024, 3024, {})
    assert (test.read, len(test), count_by_reason(test.rejects)) == (1749, 1749, {})
    assert train.frame["label"].nunique() == 119 and test.frame["label"].nunique() == 98
    assert test.labelled
    assert overlap(train, test)["rows"] == 0  # disjoint (SOURCE.txt)
    dev = ClueDataset(path=str(folder), task="iflytek").load().read()["dev"]
    assert overlap(dev, train)["distinct"] == 84 and overlap(dev, test)["distinct"] == 49
