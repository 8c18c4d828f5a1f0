"""Data helpers of the scenarios, NumPy only, never the network.

* :func:`load_mnist` — MNIST from local files: Keras' ``mnist.npz`` (keys ``x_train``, ``y_train``,
  ``x_test``, ``y_test``) or a folder of the four IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, optionally
  ``.gz``; ``-`` or ``.`` before ``idx``).
* :func:`read_idx` — one IDX file (the format of LeCun's MNIST distribution).
* :func:`keras_normalize` — ``keras.utils.normalize`` for NumPy arrays: divide by the L-``order``
  norm along ``axis``, norms of 0 replaced by 1.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

#: IDX type codes (third byte of the magic number) → big-endian NumPy dtypes
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

MNIST_FILES = {"x_train": "train-images", "y_train": "train-labels", "x_test": "t10k-images",
               "y_test": "t10k-labels"}


class DataFormatError(ValueError):
    """A data file that is not what it claims to be (the message names the file and the problem)."""


def keras_normalize(x, axis: int = -1, order: int = 2) -> np.ndarray:
    """``keras.utils.normalize(x, axis, order)`` for NumPy input, in NumPy.

    ``x / ||x||_order`` along ``axis`` (the norm broadcast back over that axis), with zero norms
    replaced by 1 so that all-zero slices stay zero. On MNIST's ``(N, 28, 28)`` images, the MNIST question's
    ``axis=1`` normalizes every pixel *column* of every image (the norm runs over the 28 rows),
    not each image: that is what the seed trained on, and what the ``digits`` scenario reproduces.
    """
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed): magic ``0x00 0x00 type ndim``, ``ndim``
    big-endian uint32 sizes, then the values in C order."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataFormatError(f"{path}: not an IDX file (the magic number must start with two zero bytes)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise DataFormatError(f"{path}: unknown IDX type code 0x{code:02x}; expected one of "
                              f"{[hex(c) for c in IDX_TYPES]}")
    if ndim == 0:
        raise DataFormatError(f"{path}: IDX file with 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataFormatError(f"{path}: IDX data has {len(raw) - header} bytes; shape {shape} of "
                              f"{dtype.name} needs {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path:
    kind = "idx3-ubyte" if "images" in stem else "idx1-ubyte"
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            candidate = folder / f"{stem}{sep}{kind}{suffix}"
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{folder}: no {stem}-{kind}[.gz] (an MNIST folder holds "
                            f"{', '.join(v + '-idx?-ubyte' for v in MNIST_FILES.values())})")


def load_mnist(path) -> dict[str, np.ndarray]:
    """``{"x_train": (N, H, W) uint8, "y_train": (N,) int64, "x_test", "y_test"}`` from ``path``:
    an ``.npz`` file (Keras' ``mnist.npz``) or a folder of IDX files. Never downloads."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder (give a local mnist.npz or a folder of "
                                f"MNIST IDX files; nothing is downloaded)")
    if path.is_dir():
        arrays = {key: read_idx(_find_idx(path, stem)) for key, stem in MNIST_FILES.items()}
    else:
        with open(path, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                raise DataFormatError(f"{path}: not an .npz file (expected a zip archive like Keras' mnist.npz, "
                                      f"or a folder of IDX files)")
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = sorted(set(MNIST_FILES) - set(npz.files))
                if missing:
                    raise DataFormatError(f"{path}: the .npz lacks {missing} (Keras' mnist.npz has "
                                          f"{sorted(MNIST_FILES)}; got {sorted(npz.files)})")
                arrays = {key: np.asarray(npz[key]) for key in MNIST_FILES}
        except (OSError, ValueError) as err:
            if isinstance(err, DataFormatError):
                raise
            raise DataFormatError(f"{path}: not a readable .npz file ({err})") from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3:
            raise DataFormatError(f"{path}: x_{split} must be images of shape (N, H, W); got {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise DataFormatError(f"{path}: y_{split} must be {len(x)} labels of shape (N,); got {y.shape}")
        if y.size and (y.min() < 0 or y.max() > 9 or not np.all(y == np.round(y))):
            raise DataFormatError(f"{path}: y_{split} must hold digit labels 0-9")
        arrays[f"y_{split}"] = y.astype(np.int64)
    return arrays


def load_digits_split(test_fraction: float = 0.2, seed: int = 0) -> dict[str, np.ndarray]:
    """scikit-learn's bundled 8×8 digits (1797 images, values 0-16; no network), a stratified
    split with a fixed seed: ``{"x_train": (N, 8, 8), "y_train", "x_test", "y_test"}``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target)
    return {"x_train": x_train, "y_train": y_train.astype(np.int64), "x_test": x_test,
            "y_test": y_test.astype(np.int64)}
