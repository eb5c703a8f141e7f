"""The user's own calibration/validation data: an .npz archive, a folder of images, a parquet/csv
table, or a Python loader `package.module:function`.

Every source ends as a `Split` checked against the model's `ModelIO`, so a wrong name, shape or dtype
fails here, naming the input and the expected spec, rather than deep inside an exporter or engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import Split
from .errors import ParamsError
from .io_spec import ModelIO
from .provenance import sha256_array, sha256_file

LABELS = "labels"
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
FILE_KINDS = {".npz": "npz", ".parquet": "parquet", ".csv": "csv"}
# Only an identifier path counts as a loader, so 's3://x.npz' or a typo'd 'C:data' reads as a missing file.
LOADER_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
FORMS = ("expected an .npz file, a folder of images (root/<class_name>/*.png|jpg|jpeg|bmp|webp), "
         "a .parquet or .csv file, or a loader 'package.module:function'")


@dataclass(frozen=True)
class DataOptions:
    """How image folders become tensors, and where relative paths start."""

    image_mean: tuple[float, ...] = (0.485, 0.456, 0.406)  # per channel, on pixels scaled to [0, 1] (ImageNet)
    image_std: tuple[float, ...] = (0.229, 0.224, 0.225)
    base_dir: Path | None = None  # relative paths resolve against it (default: the working directory)

    def __post_init__(self) -> None:
        # Params from YAML give lists and strings; keep the frozen options hashable and typed.
        object.__setattr__(self, "image_mean", tuple(float(v) for v in self.image_mean))
        object.__setattr__(self, "image_std", tuple(float(v) for v in self.image_std))
        if self.base_dir is not None:
            object.__setattr__(self, "base_dir", Path(self.base_dir))
        if not self.image_mean or not self.image_std or min(self.image_std) <= 0:
            raise ParamsError(f"image_mean and image_std need at least one value each, std > 0; got "
                              f"{self.image_mean} and {self.image_std}")


def load_source(source: str, io: ModelIO, split: str, options: DataOptions = DataOptions()) -> Split:
    """Read `source` for `split` ("calib" or "val") and check it against the model's inputs."""
    kind, path = _resolve(source, options)
    where = f"{split} data {source}"
    if kind == "npz":
        arrays = _read_npz(path, io, where)
    elif kind == "images":
        arrays = _read_images(path, io, options, where)
    elif kind == "loader":
        arrays = _call_loader(source, split, options)
    else:
        arrays = _read_table(path, kind, io, where)
    return _to_split(arrays, io, where)


def source_info(source: str, options: DataOptions = DataOptions()) -> dict[str, Any]:
    """What the data was, for provenance: {"kind", "source", "sha256"}."""
    kind, path = _resolve(source, options)
    if kind == "loader":
        # A loader has no file: hash what it returns (both splits; arrays sorted by name).
        parts = [f"{split}/{k}:{sha256_array(v)}" for split in ("val", "calib")
                 for k, v in sorted(_call_loader(source, split, options).items())]
        return {"kind": kind, "source": source, "sha256": hashlib.sha256("\n".join(parts).encode()).hexdigest()}
    if kind == "images":
        files, _ = _image_files(path, f"data {source}")
        pairs = sorted((f.relative_to(path).as_posix(), sha256_file(f)) for f in files)
        sha = hashlib.sha256("".join(f"{rel}\0{h}\n" for rel, h in pairs).encode()).hexdigest()
    else:
        sha = sha256_file(path)
    return {"kind": kind, "source": str(path), "sha256": sha}


# resolving and checking -------------------------------------------------------------------------------
def _resolve(source: str, options: DataOptions) -> tuple[str, Path]:
    """(kind, absolute path); a loader's path is meaningless."""
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = (options.base_dir or Path.cwd()) / path
    if path.is_dir():
        return "images", path
    if path.is_file():
        kind = FILE_KINDS.get(path.suffix.lower())
        if kind is None:
            raise ParamsError(f"data {source}: unknown file type {path.suffix or '(no extension)'!r}; {FORMS}")
        return kind, path
    if LOADER_RE.match(source):
        return "loader", path
    raise ParamsError(f"data {source}: no such file or folder ({path}); {FORMS}")


def _to_split(arrays: Mapping[str, np.ndarray], io: ModelIO, where: str) -> Split:
    # Extra names first: a typo ('input_id') also shows up as a missing input, but this message says why.
    extra = sorted(set(arrays) - set(io.input_names) - {LABELS})
    if extra:
        hint = "; name arrays with np.savez(path, name=array)" if any(e.startswith("arr_") for e in extra) else ""
        raise ParamsError(f"{where}: {extra} match no model input; expected {io.describe()} and optionally "
                          f"'{LABELS}' (1-D integer class indices){hint}")
    feed = io.check_feed({k: v for k, v in arrays.items() if k != LABELS}, where=where)
    rows = len(next(iter(feed.values())))
    return Split(feed, None if LABELS not in arrays else _check_labels(arrays[LABELS], rows, where))


def _check_labels(y: Any, rows: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ParamsError(f"{where}: '{LABELS}' must be a 1-D array of integer class indices, got shape "
                          f"{y.shape} dtype {y.dtype}")
    if len(y) != rows:
        raise ParamsError(f"{where}: '{LABELS}' has {len(y)} rows, the inputs {rows}")
    if len(y) and y.min() < 0:
        raise ParamsError(f"{where}: '{LABELS}' must be non-negative class indices, found {y.min()}")
    return _lossless(y, "int64", f"{where}: '{LABELS}'")


def _lossless(a: np.ndarray, dtype: str, what: str) -> np.ndarray:
    """`a` as `dtype` where no value changes. Floats narrow freely (the model computes in its dtype),
    but a float never silently becomes an integer."""
    target = np.dtype(dtype)
    if a.dtype == target:
        return a
    if a.dtype.kind == "f" and target.kind == "f":
        with np.errstate(over="ignore"):
            b = a.astype(target)
        if (np.isfinite(a) & ~np.isfinite(b)).any():
            raise ParamsError(f"{what} has values beyond the range of {dtype}")
        return b
    if a.dtype.kind in "iub":
        b = a.astype(target)
        if np.array_equal(b, a):  # compared as numbers: wrapped or rounded values differ
            return b
        raise ParamsError(f"{what} has values {a.min()} … {a.max()} that {dtype} cannot hold exactly")
    if a.dtype.kind == "f":
        raise ParamsError(f"{what} holds floats but the input is {dtype}; write integers (in a CSV, one "
                          f"missing value turns a whole column into floats)")
    raise ParamsError(f"{what} holds {a.dtype} values (text or mixed?); expected {dtype}")


# sources ----------------------------------------------------------------------------------------------
def _read_npz(path: Path, io: ModelIO, where: str) -> dict[str, np.ndarray]:
    hint = f"write it with np.savez(path, {', '.join(f'{n}=...' for n in io.input_names)}, {LABELS}=...)"
    try:
        z = np.load(path, allow_pickle=False)
        if isinstance(z, np.lib.npyio.NpzFile):
            with z:
                return {k: z[k] for k in z.files}
    except Exception as e:  # bad zip, truncation, refused object arrays: all mean "unreadable"
        raise ParamsError(f"{where}: cannot read {path} as an .npz archive ({e}); {hint}") from e
    raise ParamsError(f"{where}: {path} holds one unnamed array (.npy data), not named arrays; {hint}")


def _read_table(path: Path, kind: str, io: ModelIO, where: str) -> dict[str, np.ndarray]:
    import pandas as pd

    try:
        df = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)
    except Exception as e:  # pandas/pyarrow raise many types for a corrupt or empty file
        raise ParamsError(f"{where}: cannot read {path} as {kind} ({e}); {FORMS}") from e
    df.columns = [str(c) for c in df.columns]
    cols = list(df.columns)
    if len(df) == 0:
        raise ParamsError(f"{where}: the table has no rows (columns {cols})")
    # Which columns feed each input: `name` (a scalar or a list per row) or `name.0 … name.{k-1}`.
    chosen: dict[str, list[str]] = {}
    expect = []
    for spec in io.inputs:
        shape = spec.sample_shape(io.dims)
        if len(shape) > 1:
            raise ParamsError(f"{where}: input {spec.name!r} takes {shape} values per row; a table holds a "
                              f"value or a vector per row: save this data as .npz (np.savez(path, "
                              f"{spec.name}=array, ...))")
        parts = [f"{spec.name}.{i}" for i in range(shape[0])] if shape else []
        expect.append(f"{spec.name!r}" + (f" (a list per row) or {parts[0]!r} … {parts[-1]!r}" if parts else ""))
        if spec.name in cols:
            chosen[spec.name] = [spec.name]
        elif parts and any(p in cols for p in parts):
            chosen[spec.name] = parts
    expected = f"columns {', '.join(expect)} and optionally '{LABELS}' for {io.describe()}"
    used = {c for cs in chosen.values() for c in cs} | {LABELS}
    extra = [c for c in cols if c not in used]
    if extra:
        hint = "; a CSV written by pandas needs index=False" if any(c.startswith("Unnamed:") for c in extra) else ""
        raise ParamsError(f"{where}: column(s) {extra} match no model input; expected {expected}{hint}")
    out = {}
    for spec in io.inputs:
        if spec.name not in chosen:
            raise ParamsError(f"{where}: no column for input {spec.name!r}; expected {expected}")
        shape, names = spec.sample_shape(io.dims), chosen[spec.name]
        if missing := [c for c in names if c not in cols]:
            raise ParamsError(f"{where}: input {spec.name!r} lacks column(s) {missing}; expected {expected}")
        if shape and names == [spec.name]:
            a = _stack_cells(df[spec.name].to_list(), shape[0], spec.name, where)
        else:
            a = df[names].to_numpy() if shape else df[spec.name].to_numpy()
        out[spec.name] = _lossless(a, spec.dtype, f"{where}: input {spec.name!r}")
    if LABELS in cols:
        out[LABELS] = df[LABELS].to_numpy()
    return out


def _stack_cells(cells: list[Any], k: int, name: str, where: str) -> np.ndarray:
    for i, c in enumerate(cells):
        if c is None or np.ndim(c) != 1 or len(c) != k:
            raise ParamsError(f"{where}: input {name!r}, row {i}: expected a list of {k} values, got {c!r:.60} "
                              f"(in a CSV, cells are text: use columns {name}.0 … {name}.{k - 1})")
    return np.stack([np.asarray(c) for c in cells])


def _image_files(root: Path, where: str) -> tuple[list[Path], list[int] | None]:
    """Image paths in ImageFolder order (class by sorted name, then path) and their labels, or None
    where the images sit directly in `root`. Hidden files and folders (.DS_Store, .ipynb_checkpoints)
    are skipped."""
    def images(d: Path, recursive: bool) -> list[Path]:
        found = (p for p in (d.rglob("*") if recursive else d.iterdir())
                 if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                 and not any(s.startswith(".") for s in p.relative_to(root).parts))
        return sorted(found, key=lambda p: p.relative_to(root).as_posix())

    exts = "|".join(e[1:] for e in IMAGE_EXTS)
    loose = images(root, False)
    classes = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if loose:
        if any(images(c, True) for c in classes):
            raise ParamsError(f"{where}: {root} has images both directly inside and in subfolders; use "
                              f"root/<class_name>/*.{{{exts}}} (labelled) or only images in root (unlabelled)")
        return loose, None
    if not classes:
        raise ParamsError(f"{where}: no images in {root}; expected root/<class_name>/*.{{{exts}}} "
                          f"(labels by sorted class name) or images directly in the folder (no labels)")
    files, labels = [], []
    for i, c in enumerate(classes):
        found = images(c, True)
        if not found:  # would shift every later label by one against the model's classes
            raise ParamsError(f"{where}: class folder {c.name!r} has no images (*.{{{exts}}}); labels are "
                              f"numbered by sorted class folder, so add images or remove it")
        files += found
        labels += [i] * len(found)
    return files, labels


def _read_images(root: Path, io: ModelIO, options: DataOptions, where: str) -> dict[str, np.ndarray]:
    from PIL import Image

    spec = io.inputs[0]
    shape = spec.sample_shape(io.dims)
    if len(io.inputs) != 1 or not spec.is_float or len(shape) != 3 or shape[0] not in (1, 3):
        raise ParamsError(f"{where}: an image folder feeds a model with one float input of shape (N, C, H, W), "
                          f"C 1 or 3; this model takes {io.describe()}: use an .npz file or a loader")
    c, h, w = shape
    mean, std = (_per_channel(v, c, n, where) for v, n in ((options.image_mean, "image_mean"),
                                                           (options.image_std, "image_std")))
    files, labels = _image_files(root, where)
    x = np.empty((len(files), c, h, w), np.float32)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR)
        except Exception as e:  # truncated or not an image despite its extension
            raise ParamsError(f"{where}: cannot read image {f} ({e}); remove or replace it") from e
        a = np.asarray(im, dtype=np.float32)
        x[i] = a[None] if c == 1 else a.transpose(2, 0, 1)
    x /= 255.0
    x -= mean
    x /= std
    out = {spec.name: x.astype(spec.dtype, copy=False)}
    if labels is not None:
        out[LABELS] = np.asarray(labels, np.int64)
    return out


def _per_channel(values: tuple[float, ...], c: int, name: str, where: str) -> np.ndarray:
    if len(values) not in (1, c):
        raise ParamsError(f"{where}: {name} has {len(values)} values but the input has {c} channel(s); give "
                          f"{c} value(s), or 1 for every channel (e.g. image_mean: [0.5], image_std: [0.5])")
    return np.asarray(values, np.float32).reshape(-1, 1, 1)


@contextlib.contextmanager
def _on_sys_path(d: Path) -> Iterator[None]:
    # A console script's sys.path lacks the working directory, where a user's loader module usually
    # lives. Appended, so it never shadows an installed package.
    entry = str(d.resolve())
    added = entry not in sys.path
    if added:
        sys.path.append(entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def _call_loader(source: str, split: str, options: DataOptions) -> dict[str, np.ndarray]:
    module_name, _, attr = source.partition(":")
    with _on_sys_path(options.base_dir or Path.cwd()):
        try:
            fn: Any = importlib.import_module(module_name)
        except ImportError as e:
            raise ParamsError(f"data {source}: no such file or folder, and module {module_name!r} cannot be "
                              f"imported ({e}); {FORMS}") from e
        for part in attr.split("."):
            if not hasattr(fn, part):
                raise ParamsError(f"data {source}: module {module_name!r} has no {attr!r}")
            fn = getattr(fn, part)
        if not callable(fn):
            raise ParamsError(f"data {source}: {attr!r} is a {type(fn).__name__}, not a function loader(split)")
        try:
            data = fn(split)
        except Exception as e:  # the user's code: keep its traceback, say who called it
            e.add_note(f"raised by the data loader {source}({split!r})")
            raise
    if not isinstance(data, Mapping):
        raise ParamsError(f"data {source}: the loader must return a dict of arrays named after the model inputs "
                          f"plus optional '{LABELS}', got {type(data).__name__}")
    return {str(k): np.asarray(v) for k, v in data.items()}
