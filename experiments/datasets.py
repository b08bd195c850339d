"""The dataset registry: the one table of the datasets a run can train on. No torch here, so the spec, the
probe (`experiments.probe`), the planner, the FLOPs count and the analysis all read it.

Each `Dataset` says its `name` (the spec's `dataset` value), `display` (the paper's name; a dataset the
paper lacks keeps its own), `classes`, `train`/`test` (images in each split, as the loader serves them),
`input_size` (the side in pixels of the square images the model sees), `files(data_root)` (what must be on
disk before a run: the probe checks that each exists; `experiments.data` reads them), whether it is
`bundled` with the code, and whether `download: true` can fetch it. `experiments.data.dataset` builds its
loader. Adding a dataset: one row here and its branch there (CONTRIBUTING.md, "Add a dataset").
"""
import collections
import os

Dataset = collections.namedtuple("Dataset", "name display classes train test input_size files bundled downloads")

# torchvision's extracted CIFAR layout: name -> (folder, train files, test files, label key)
CIFAR_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", ["data_batch_%d" % i for i in range(1, 6)], ["test_batch"], "labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels"),
}
# scikit-learn's copy of the UCI optdigits test set (images 0..16, labels), as uint8 arrays: the board
# needs no scikit-learn (and no scipy) for the offline dataset.
DIGITS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")
DIGITS_TRAIN_FRACTION = 0.8  # of scikit-learn's 1,797 images; the rest (a seeded permutation) is the test set


def _cifar_files(name):
    folder, train, test, _ = CIFAR_LAYOUT[name]
    return lambda root: [os.path.join(root, folder, f) for f in train + test]


def _imagenet_files(root):
    return [os.path.join(root, "train"), os.path.join(root, "val")]  # ImageFolder class folders


DATASETS = collections.OrderedDict((d.name, d) for d in [
    Dataset("cifar10", "CIFAR-10", 10, 50000, 10000, 32, _cifar_files("cifar10"), False, True),
    Dataset("cifar100", "CIFAR-100", 100, 50000, 10000, 32, _cifar_files("cifar100"), False, True),
    Dataset("imagenet", "ImageNet", 1000, 1281167, 50000, 224, _imagenet_files, False, False),
    Dataset("digits", "digits", 10, int(DIGITS_TRAIN_FRACTION * 1797), 1797 - int(DIGITS_TRAIN_FRACTION * 1797),
            32, lambda root: [DIGITS_FILE], True, False),
])


def state(name, data_root, download):
    """What the probe reports for one dataset: {"ok": bool, "detail": one line}."""
    ds = DATASETS[name]
    missing = [p for p in ds.files(data_root) if not os.path.exists(p)]
    if not missing:
        where = "bundled with the code" if ds.bundled else "found under " + os.path.abspath(data_root)
        return {"ok": True, "detail": "%s %s" % (name, where)}
    if download and ds.downloads:
        return {"ok": True, "detail": "%s not under %s yet; `download: true` fetches it at the start"
                                      % (name, os.path.abspath(data_root))}
    return {"ok": False, "detail": "%s not found: %s missing (data_root=%s)"
                                   % (name, missing[0], os.path.abspath(data_root))}
