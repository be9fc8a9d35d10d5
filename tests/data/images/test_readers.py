"""Every image reader on its real format (the shared files, behind a skip) and on each kind of
corrupt input: whole-file defects fail naming the file and the expectation; record defects are
rejects rows; ``read == accepted + rejected``."""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from kexue.data.images.cifar import Cifar10Dataset, parse_files, parse_meta
from kexue.data.images.folder import ImageFolderDataset
from kexue.data.images.idx import IdxImagesDataset, parse_pair
from kexue.data.images.imageset import ImageFormatError, from_table, to_table

REAL = Path(__file__).resolve().parents[3].parent / "shared" / "real-data"


def idx_images(x: np.ndarray) -> bytes:
    return struct.pack(">iiii", 2051, *x.shape) + x.astype(np.uint8).tobytes()


def idx_labels(y: np.ndarray) -> bytes:
    return struct.pack(">ii", 2049, len(y)) + y.astype(np.uint8).tobytes()


@pytest.fixture
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.array([3, 1, 4, 1, 5])


def test_idx_pair_decodes_raw_and_gzipped_identically(xy):
    x, y = xy
    a = parse_pair(idx_images(x), idx_labels(y), "i", "l", "mnist_idx", "train")
    b = parse_pair(gzip.compress(idx_images(x)), gzip.compress(idx_labels(y)), "i", "l",
                   "mnist_idx", "train")
    assert a.images.shape == (5, 28, 28, 1) and np.array_equal(a.images[..., 0], x)
    assert np.array_equal(b.images, a.images) and a.labels.tolist() == [3, 1, 4, 1, 5]
    assert a.record.tolist() == [1, 2, 3, 4, 5] and a.read == 5 and a.rejects.empty


def _corrupt_deflate(data: bytes) -> bytes:
    gz = bytearray(gzip.compress(data))
    gz[12:20] = b"\xff" * 8                    # inside the first deflate block, after the header
    with pytest.raises(zlib.error):            # the premise: what gzip itself raises here
        gzip.decompress(bytes(gz))
    return bytes(gz)


@pytest.mark.parametrize("mutate, match", [
    (lambda i, lab: (i[:-7], lab), r"images\.idx: truncated: .* bytes, the header \(5, 28, 28\)"),
    (lambda i, lab: (i + b"\0", lab), "longer than its header says"),
    (lambda i, lab: (struct.pack(">i", 2049) + i[4:], lab), r"magic number 0x00000801, expected "
                                                            r"0x00000803"),
    (lambda i, lab: (i, idx_labels(np.array([1, 2, 3]))), "holds 5 images but labels.idx holds 3"),
    (lambda i, lab: (b"\x1f\x8bnot-gzip", lab), "not a readable gzip"),
    # a corrupt deflate stream raises zlib.error (not OSError): still the named-file error
    (lambda i, lab: (_corrupt_deflate(i), lab), "images.idx: not a readable gzip .*invalid"),
    (lambda i, lab: (i[:2], lab), "not even an IDX header"),
])
def test_idx_whole_file_defects_fail_naming_the_file(xy, mutate, match):
    x, y = xy
    images, labels = mutate(idx_images(x), idx_labels(y))
    with pytest.raises(ImageFormatError, match=match):
        parse_pair(images, labels, "images.idx", "labels.idx", "mnist_idx", "train")


def test_idx_label_out_of_range_is_a_reject_and_counts_are_conserved(xy):
    x, _ = xy
    s = parse_pair(idx_images(x), idx_labels(np.array([3, 12, 4, 1, 10])), "i", "l.idx",
                   "mnist_idx", "test")
    assert (s.read, len(s.images), len(s.rejects)) == (5, 3, 2)
    assert s.rejects["line"].tolist() == [2, 5] and set(s.rejects["reason"]) == {"bad_label"}
    assert s.rejects["file"].iloc[0] == "l.idx" and s.record.tolist() == [1, 3, 4]
    assert s.report()["by_reason"] == {"bad_label": 2}


def test_idx_dataset_reads_a_folder_lazily_and_refuses_lonely_files(tmp_path, xy):
    x, y = xy
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_images(x)))
    ds = IdxImagesDataset(path=str(tmp_path), source="fashion_mnist_idx")
    raw = ds.load()
    assert raw.unavailable is None
    with pytest.raises(ImageFormatError, match="no labels file t10k-labels-idx1-ubyte"):
        raw.read()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_labels(y))
    s = ds.load().read()
    assert s.classes[0] == "T-shirt/top" and s.split.tolist() == ["test"] * 5
    assert "No IDX images" in IdxImagesDataset(path=str(tmp_path / "none")).load().unavailable


@pytest.mark.skipif(not (REAL / "mnist" / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="../shared/real-data/mnist is not present")
def test_real_mnist_t10k_files(tmp_path):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(REAL / "mnist" / name, tmp_path / name)
    s = IdxImagesDataset(path=str(tmp_path)).load().read()
    assert s.images.shape == (10000, 28, 28, 1) and s.read == 10000 and s.rejects.empty
    assert s.labels[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]     # the well-known first digits
    assert np.bincount(s.labels).tolist()[:3] == [980, 1135, 1032]
    # the real train labels file alone: 60,000 labels (no images here) -> a clear refusal
    shutil.copy(REAL / "mnist" / "train-labels-idx1-ubyte.gz", tmp_path)
    lab = gzip.decompress((tmp_path / "train-labels-idx1-ubyte.gz").read_bytes())
    assert struct.unpack(">ii", lab[:8]) == (2049, 60000)


def _cifar_batch(n: int, labels: list[int]) -> bytes:
    rng = np.random.default_rng(n)
    return pickle.dumps({b"batch_label": b"x", b"labels": labels,
                         b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"filenames": [b"f%d" % i for i in range(n)]})


def test_cifar_channel_layout_and_official_split():
    data = np.arange(3072, dtype=np.int64) % 251
    batch = pickle.dumps({b"labels": [7], b"data": data.astype(np.uint8)[None]})
    s = parse_files({"data_batch_1": batch, "test_batch": _cifar_batch(2, [0, 9])})
    assert s.images.shape == (3, 32, 32, 3) and s.split.tolist() == ["train", "test", "test"]
    img = s.images[0]
    # red plane first, then green, then blue; each 32x32 row-major
    assert img[0, 0].tolist() == [0, 1024 % 251, 2048 % 251]
    assert img[1, 2, 0] == (32 + 2) % 251 and s.classes[7] == "horse"


@pytest.mark.parametrize("files, match", [
    ({"data_batch_1": b"garbage"}, "not a CIFAR-10 python batch"),
    ({"data_batch_1": pickle.dumps({b"labels": [1]})}, r"keys \['data'\] missing"),
    ({"data_batch_1": pickle.dumps({b"labels": [1], b"data": np.zeros((1, 100), np.uint8)})},
     r"expected uint8 N x 3072"),
    ({"data_batch_1": pickle.dumps({b"labels": [1, 2], b"data": np.zeros((1, 3072), np.uint8)})},
     "1 images but 2 labels"),
    ({"data_batch_1": pickle.dumps(__import__("os").getcwd)}, "is not allowed"),
])
def test_cifar_defects_fail_naming_the_batch(files, match):
    with pytest.raises(ImageFormatError, match=match):
        parse_files(files)


def test_cifar_bad_label_reject_and_tar_archive(tmp_path):
    arch = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(arch, "w:gz") as tar:
        for name, data in (("data_batch_1", _cifar_batch(3, [1, 11, 2])),
                           ("test_batch", _cifar_batch(2, [0, 9]))):
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    s = Cifar10Dataset(path=str(tmp_path)).load().read()
    assert (s.read, len(s.images)) == (5, 4) and s.rejects["line"].tolist() == [2]
    assert s.rejects["file"].tolist() == ["data_batch_1"]
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"truncated")
    with pytest.raises(ImageFormatError, match="not a readable tar.gz"):
        Cifar10Dataset(path=str(tmp_path)).load().read()


@pytest.mark.skipif(not (REAL / "cifar10" / "batches.meta").is_file(),
                    reason="../shared/real-data/cifar10 is not present")
def test_real_cifar_meta():
    names = parse_meta((REAL / "cifar10" / "batches.meta").read_bytes())
    assert names == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                     "ship", "truck"]


def test_folder_reader_rejects_unreadable_and_wrong_size_images(tmp_path):
    from PIL import Image

    for cls, n in (("cat", 2), ("dog", 1)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(tmp_path / "dog" / "big.jpg")
    (tmp_path / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / "more").mkdir()                       # nested: not read, but counted
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "dog" / "more" / "x.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "stray.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "cat" / "c.bmp")
    # 16-bit grey: convert("L") would clip every value above 255 to white
    Image.fromarray(np.full((8, 8), 60000, np.uint16)).save(tmp_path / "cat" / "deep.png")
    s = ImageFolderDataset(path=str(tmp_path), height=8, width=8, channels=3).load().read()
    assert s.classes == ["cat", "dog"] and s.images.shape == (3, 8, 8, 3)
    assert s.labels.tolist() == [0, 0, 1]
    by = dict(zip(s.rejects["file"], s.rejects["reason"], strict=True))
    assert by == {"dog/big.jpg": "wrong_size", "dog/broken.png": "unreadable_image",
                  "dog/notes.txt": "unsupported_file", "dog/more": "unsupported_file",
                  "stray.png": "unsupported_file", "cat/c.bmp": "unsupported_file",
                  "cat/deep.png": "unsupported_mode"}
    assert s.read == 10 == len(s.images) + len(s.rejects)     # every entry is counted
    # positions follow the sorted listing: root entries, then cat/, then dog/
    pos = dict(zip(s.rejects["file"], s.rejects["line"], strict=True))
    assert pos["stray.png"] == 1 and pos["cat/c.bmp"] == 4 and pos["dog/more"] == 9
    grey = ImageFolderDataset(path=str(tmp_path), height=8, width=8, channels=1).load().read()
    assert grey.images.shape == (3, 8, 8, 1) and int(grey.images[1].max()) == 40


def test_stored_table_round_trips(xy):
    x, y = xy
    s = parse_pair(idx_images(x), idx_labels(y), "i", "l", "mnist_idx", "train")
    table = to_table(s.images, s.labels, s.file, s.record)
    assert list(table.columns[:4]) == ["file", "record", "label", "px000"]
    assert np.array_equal(from_table(table, s.shape), s.images)
