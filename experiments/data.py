"""Datasets and loaders: CIFAR-10/100 (torchvision's on-disk format), ImageNet (ImageFolder), and an
offline dataset for quick runs and tests.

CIFAR augmentation is the paper's (and the official scripts'): pad 4, random 32x32 crop, horizontal flip,
per-channel normalisation.

Offline dataset (`digits`): scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes,
kept as `digits.npz` in this package, so nothing is downloaded and nothing beyond numpy is needed),
scaled to 32x32 and repeated on 3 channels so every CIFAR model and the CIFAR augmentation apply
unchanged. It is real image classification with a learnable signal, unlike random tensors, and small
enough for a whole EB Train run on a laptop's CPU. The split is fixed: the last 20% (seeded permutation) is the test set.
"""
import os
import pickle
import signal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from .datasets import CIFAR_LAYOUT, DIGITS_FILE, DIGITS_TRAIN_FRACTION

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DataError(RuntimeError):
    """The dataset is missing or unreadable; the message says where it was looked for and the fix."""


def _cifar_transforms(train):
    from torchvision import transforms
    steps = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if train else []
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)])


class CifarFolder(Dataset):
    """CIFAR-10/100 read from torchvision's extracted python-pickle layout under `root`.

    Read here rather than through torchvision's dataset classes because those refuse any file whose md5
    differs from the official archive's, and the tests exercise this reader on small files they write in
    the same format. Downloads still go through torchvision, which verifies the archive.
    """

    def __init__(self, name, root, train, transform):
        folder_name, train_files, test_files, label_key = CIFAR_LAYOUT[name]
        folder = os.path.join(root, folder_name)
        images, labels = [], []
        for fname in (train_files if train else test_files):
            path = os.path.join(folder, fname)
            if not os.path.exists(path):
                raise DataError("%s file %s not found: expected torchvision's extracted layout under %s. "
                                "Put the dataset there (data_root=%s) or set `download: true`."
                                % (name.upper(), path, folder, root))
            try:
                with open(path, "rb") as fh:
                    batch = pickle.load(fh, encoding="latin1")
                images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.extend(int(v) for v in batch[label_key])
            except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as err:
                raise DataError("%s file %s is unreadable (%s): re-extract cifar-*-python.tar.gz there or "
                                "set `download: true`." % (name.upper(), path, err))
        self.data = np.concatenate(images).transpose(0, 2, 3, 1)  # HWC, as PIL expects
        self.targets = labels
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        from PIL import Image
        img = Image.fromarray(self.data[i])
        return self.transform(img), self.targets[i]


def _cifar(name, root, train, download):
    if download:
        from torchvision import datasets
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        cls(root=root, train=train, download=True)
    return CifarFolder(name, root, train, _cifar_transforms(train))


def _imagenet(root, train):
    from torchvision import datasets, transforms
    split = os.path.join(root, "train" if train else "val")
    if not os.path.isdir(split):
        raise DataError("ImageNet not found: expected ImageFolder class folders under %s "
                        "(data_root/train and data_root/val)." % split)
    if train:
        steps = [transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip()]
    else:
        steps = [transforms.Resize(256), transforms.CenterCrop(224)]
    tf = transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    return datasets.ImageFolder(split, transform=tf)


class TensorImages(Dataset):
    """In-memory uint8 images [N, 3, H, W] with labels and the CIFAR augmentation done on tensors."""

    def __init__(self, images, labels, train):
        self.images = images
        self.labels = labels
        self.train = train
        self.mean = torch.tensor(CIFAR_MEAN).view(3, 1, 1)
        self.std = torch.tensor(CIFAR_STD).view(3, 1, 1)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].float().div(255.0)
        if self.train:
            x = torch.nn.functional.pad(x, (4, 4, 4, 4))
            top, left = (int(v) for v in torch.randint(0, 9, (2,)))
            x = x[:, top:top + 32, left:left + 32]
            if torch.rand(1).item() < 0.5:
                x = x.flip(2)
        return (x - self.mean) / self.std, int(self.labels[i])


def _digits(train):
    with np.load(DIGITS_FILE) as bundle:
        raw_images, raw_labels = bundle["images"], bundle["target"]
    images = torch.from_numpy(raw_images.astype(np.float32) / 16.0).unsqueeze(1)
    images = torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8).repeat(1, 3, 1, 1)
    labels = torch.from_numpy(raw_labels.astype(np.int64))
    order = torch.from_numpy(np.random.RandomState(0).permutation(len(labels)))
    cut = int(DIGITS_TRAIN_FRACTION * len(labels))
    idx = order[:cut] if train else order[cut:]
    return TensorImages(images[idx], labels[idx], train)


def dataset(spec, train):
    name = spec["dataset"]
    if name in CIFAR_LAYOUT:
        ds = _cifar(name, spec["data_root"], train, spec["download"])
    elif name == "imagenet":
        ds = _imagenet(spec["data_root"], train)
    else:
        ds = _digits(train)
    limit = spec["train_subset"] if train else spec["test_subset"]
    if limit is not None and limit < len(ds):
        ds = Subset(ds, list(range(limit)))
    return ds


def _seed_worker(worker_id):
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    # Slurm (scancel, preemption, a time limit) sends SIGTERM to every process of the job: a worker that
    # died of it would fail the run before the runner stops it at a checkpoint; the runner ends workers.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _workers(spec):
    # the digits set is in memory already: worker processes would only add their start-up time
    return 0 if spec["dataset"] == "digits" else spec["workers"]


def loaders(spec, pin_memory=False):
    """(train_set, test_loader): the train loader is made per epoch by `train_loader` so that each
    epoch's order depends only on (seed, epoch) and a resumed run sees the same batches."""
    train_set = dataset(spec, True)
    test_set = dataset(spec, False)
    test = DataLoader(test_set, batch_size=spec["batch_size"], shuffle=False, num_workers=_workers(spec),
                      pin_memory=pin_memory)
    return train_set, test


def train_loader(spec, train_set, seed, pin_memory=False, batch_size=None):
    """`batch_size` None: the spec's (a phase with its own, the EB retrain, passes it)."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return DataLoader(train_set, batch_size=batch_size or spec["batch_size"], shuffle=True, num_workers=_workers(spec),
                      generator=gen, worker_init_fn=_seed_worker, pin_memory=pin_memory, drop_last=False)
