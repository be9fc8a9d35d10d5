import pytest
from kedro.io import DatasetError

from kexue.data.textcls import ChnSentiCorpDataset, TextFormatError, parse_chnsenticorp

from .conftest import REAL, real_data


def test_bad_lines_with_line_numbers():
    data = "\n".join([
        "label\ttext_a",          # 1 header
        "1\t很好",                 # 2 ok
        "0\t太差\t多一列",          # 3 field count
        "2\t标签不对",              # 4 bad label
        "1\t   ",                  # 5 empty text
        "\t没有标签",               # 6 bad label (empty)
        "",                        # 7 blank line
        "只有一列",                 # 8 field count
        "0\t还行",                 # 10 (after the invalid line) ok
    ]).encode()
    data = data.replace("0\t还行".encode(), b"1\t\xe5\xa5\n0\t" + "还行".encode())
    rec = parse_chnsenticorp(data, "train.tsv", "train")
    assert rec.read == 9 == len(rec.frame) + len(rec.rejects)  # the header is not a record
    assert rec.frame["line"].tolist() == [2, 10]
    assert rec.frame["label"].tolist() == [1, 0]
    assert rec.frame["label_name"].tolist() == ["positive", "negative"]
    got = dict(zip(rec.rejects["line"], rec.rejects["reason"], strict=True))
    assert got == {3: "field_count", 4: "bad_label", 5: "empty_text", 6: "bad_label",
                   7: "blank_line", 8: "field_count", 9: "invalid_utf8"}


def test_dev_and_test_headers():
    dev = parse_chnsenticorp("qid\tlabel\ttext_a\n0\t1\t好\n1\t0\n".encode(), "dev.tsv", "dev")
    assert dev.frame["label"].tolist() == [1] and dev.rejects["reason"].tolist() == ["field_count"]
    test = parse_chnsenticorp("qid\ttext_a\n0\t好\n1\t\n".encode(), "test.tsv", "test")
    assert test.frame["label"].tolist() == [-1] and test.frame["label_id"].tolist() == [""]
    assert test.rejects["line"].tolist() == [3] and not test.labelled


@pytest.mark.parametrize("data,split", [(b"text_a\tlabel\n1\tx\n", "train"),
                                        (b"1\t\xe5\xa5\xbd\n", "train"),
                                        (b"qid\ttext_a\n0\tx\n", "dev"),
                                        (b"", "train"), (b"\xff\n", "test")])
def test_bad_header_raises(data, split):
    with pytest.raises(TextFormatError, match=r"x\.tsv.*expected 'label\\ttext_a'"):
        parse_chnsenticorp(data, "x.tsv", split)


def test_dataset_missing(tmp_path):
    raw = ChnSentiCorpDataset(path=str(tmp_path)).load()
    assert "train.tsv" in raw.unavailable
    with pytest.raises(DatasetError):
        raw.read()


@real_data
def test_real_chnsenticorp():
    splits = ChnSentiCorpDataset(path=str(REAL / "chnsenticorp")).load().read()
    assert list(splits) == ["train", "dev", "test"]
    counts = {k: (v.read, len(v), len(v.rejects)) for k, v in splits.items()}
    assert counts == {"train": (9600, 9600, 0), "dev": (1200, 1200, 0), "test": (1200, 1200, 0)}
    assert splits["train"].frame["label"].value_counts().to_dict() == {0: 4801, 1: 4799}
    assert splits["dev"].frame["label"].value_counts().to_dict() == {0: 607, 1: 593}
    assert (splits["test"].frame["label"] == -1).all()
    assert splits["train"].frame["text"].nunique() == 8249
    assert splits["train"].frame["line"].iloc[0] == 2  # line 1 is the header
