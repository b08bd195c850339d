"""The CIFAR reader on small files written in torchvision's format, and the offline digits set."""
import os
import pickle

import numpy as np
import pytest
import torch

from experiments import data
from experiments.spec import resolve


def _write_batch(path, n, label_key, seed, classes):
    rng = np.random.RandomState(seed)
    batch = {"data": rng.randint(0, 256, size=(n, 3072), dtype=np.uint8),
             label_key: rng.randint(0, classes, size=n).tolist(), "batch_label": "made by a test"}
    with open(path, "wb") as fh:
        pickle.dump(batch, fh)
    return batch


def _spec(**kw):
    base = dict(dataset="cifar10", arch="vgg", depth=11, batch_size=4, workers=0, run_id="t")
    base.update(kw)
    return resolve(base)


def test_cifar10_reader_on_generated_files(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [_write_batch(folder / ("data_batch_%d" % i), 3, "labels", i, 10) for i in range(1, 6)]
    _write_batch(folder / "test_batch", 2, "labels", 9, 10)
    spec = _spec(data_root=str(tmp_path))
    train = data.dataset(spec, train=True)
    test = data.dataset(spec, train=False)
    assert len(train) == 15 and len(test) == 2
    x, y = test[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    # the test transform is only ToTensor + Normalize: undo it and compare with the raw pixels
    raw = torch.from_numpy(pickle.load(open(folder / "test_batch", "rb"))["data"][0].reshape(3, 32, 32))
    mean = torch.tensor(data.CIFAR_MEAN).view(3, 1, 1)
    std = torch.tensor(data.CIFAR_STD).view(3, 1, 1)
    assert torch.allclose((x * std + mean) * 255, raw.float(), atol=1e-3)
    assert y == pickle.load(open(folder / "test_batch", "rb"))["labels"][0]
    assert train[4][1] == batches[1]["labels"][1]
    xt, _ = train[0]
    assert xt.shape == (3, 32, 32)


def test_cifar100_reader_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _write_batch(folder / "train", 4, "fine_labels", 1, 100)
    test = _write_batch(folder / "test", 3, "fine_labels", 2, 100)
    spec = _spec(dataset="cifar100", data_root=str(tmp_path))
    ds = data.dataset(spec, train=False)
    assert [ds[i][1] for i in range(3)] == test["fine_labels"]


def test_missing_cifar_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(data.DataError, match=r"data_batch_1 not found.*download: true"):
        data.dataset(_spec(data_root=str(tmp_path)), train=True)


def test_corrupt_cifar_file_is_reported(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(data.DataError, match="unreadable"):
        data.dataset(_spec(data_root=str(tmp_path)), train=False)


def test_imagenet_missing_folder_is_reported(tmp_path):
    with pytest.raises(data.DataError, match="ImageFolder"):
        data.dataset(_spec(dataset="imagenet", arch="resnet", depth=18, data_root=str(tmp_path)), train=True)


def test_digits_offline_split_and_subset():
    spec = _spec(dataset="digits")
    train, test = data.dataset(spec, True), data.dataset(spec, False)
    assert len(train) + len(test) == 1797
    x, y = train[0]
    assert x.shape == (3, 32, 32) and 0 <= y < 10
    small = data.dataset(_spec(dataset="digits", train_subset=100), True)
    assert len(small) == 100


def test_train_order_depends_only_on_seed():
    spec = _spec(dataset="digits", train_subset=64, batch_size=16)
    ds = data.dataset(spec, True)

    def first_batch(seed):
        torch.manual_seed(seed)
        return next(iter(data.train_loader(spec, ds, seed)))

    a, b, c = first_batch(1), first_batch(1), first_batch(2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_imagenet_imagefolder_on_generated_images(tmp_path):
    from PIL import Image
    rng = np.random.RandomState(0)
    for split, n in (("train", 2), ("val", 1)):
        for cls in ("n01440764", "n01443537"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.randint(0, 256, (40, 60, 3), dtype=np.uint8)).save(folder / ("%d.JPEG" % i))
    spec = _spec(dataset="imagenet", arch="resnet", depth=18, data_root=str(tmp_path))
    train, val = data.dataset(spec, True), data.dataset(spec, False)
    assert len(train) == 4 and len(val) == 2
    assert train.classes == ["n01440764", "n01443537"]
    x, y = val[1]
    assert x.shape == (3, 224, 224) and y == 1


def test_the_registry_says_what_the_loaders_serve(tmp_path):
    """Sizes, classes and input size of the registry are those of the real loaders (digits: the whole
    set; CIFAR: the files the registry lists are the ones the reader opens)."""
    from experiments.datasets import DATASETS
    digits = DATASETS["digits"]
    spec = _spec(dataset="digits")
    train, test = data.dataset(spec, True), data.dataset(spec, False)
    assert (len(train), len(test)) == (digits.train, digits.test)
    x, _ = train[0]
    assert tuple(x.shape) == (3, digits.input_size, digits.input_size)
    assert max(int(v) for v in train.labels) + 1 == digits.classes
    cifar = DATASETS["cifar100"]
    for path in cifar.files(str(tmp_path)):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_batch(path, 2, "fine_labels", 0, cifar.classes)
    assert len(data.dataset(_spec(dataset="cifar100", data_root=str(tmp_path)), True)) == 2
