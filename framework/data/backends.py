"""Where a dataset's images come from: a folder (``io_backend: {type: disk}``, the default) or an LMDB made by
``scripts/create_lmdb.py`` or BasicSR's tools (``io_backend: {type: lmdb}``). Both hand out the encoded bytes;
decoding is :func:`framework.data.image_io.decode_bytes`'s job.

BasicSR's LMDB layout: ``<name>.lmdb/data.mdb`` (and ``lock.mdb``) holds one value per image, the encoded
image file, under the key ``<name without extension>``; ``<name>.lmdb/meta_info.txt`` lists the images, one a
line: ``<name> (<h>,<w>,<c>) <compression level>``. A ``meta_info_file`` (BasicSR's key) is a list in the same
form (only the first word of a line is needed) that chooses the images instead of a folder scan.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..errors import OptionError, UserError
from .image_io import IMG_EXTENSIONS, image_size, images_by_stem

IO_BACKENDS = ("disk", "lmdb")
Key = Union[str, Tuple[Any, ...]]  # the option a source reads: dataroot_gt, or (dataroot_gt, 1) in a list
Roots = Union[str, Sequence[str]]  # one folder, or a list of them (read as one set, paired in order)


def _path(key: Key) -> Tuple[Any, ...]:
    return key if isinstance(key, tuple) else (key,)


META_INFO_NAME = "meta_info.txt"
_SHAPE = re.compile(r"\((\d+),\s*(\d+),\s*(\d+)\)")


def read_meta_info(path: str, key: Key = "meta_info_file") -> List[Tuple[str, Optional[Tuple[int, int, int]]]]:
    """``[(name, (h, w, c) or None)]`` from a meta-info file; a line it cannot read names the file and line."""
    out: List[Tuple[str, Optional[Tuple[int, int, int]]]] = []
    for number, text in _listed_lines(path, key, "images"):
        name, _, rest = text.partition(" ")
        match = _SHAPE.match(rest.strip())
        if rest.strip() and not match:
            raise OptionError(_path(key), f"{path}, line {number}: expected 'name (h,w,c) compression', got {text!r}")
        shape = (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None
        out.append((name, shape))
    return out


def _listed_lines(path: str, key: Key, what: str) -> List[Tuple[int, str]]:
    """The non-empty lines of a list file with their numbers; a missing or empty file is the option's error."""
    if not os.path.isfile(path):
        raise OptionError(_path(key), f"file '{path}' does not exist")
    with open(path, encoding="utf-8") as fh:
        lines = [(number, line.strip()) for number, line in enumerate(fh, 1) if line.strip()]
    if not lines:
        raise OptionError(_path(key), f"'{path}' lists no {what}")
    return lines


def read_pair_list(path: str, key: str = "meta_info") -> List[Tuple[str, str]]:
    """``[(gt_name, lq_name)]`` from Real-ESRGAN's paired meta-info file (``gt_name, lq_name`` a line)."""
    out: List[Tuple[str, str]] = []
    for number, text in _listed_lines(path, key, "image pairs"):
        gt, comma, lq = text.partition(",")
        if not comma or not gt.strip() or not lq.strip():
            raise OptionError((key,), f"{path}, line {number}: expected 'gt_name, lq_name', got {text!r}")
        out.append((gt.strip(), lq.strip()))
    return out


def _by_stem(names: List[str], where: str) -> Dict[str, str]:
    """``{stem: name}``; a name listed twice (or two extensions of one name) is an error."""
    found: Dict[str, str] = {}
    for name in names:
        stem = os.path.splitext(name)[0] if name.lower().endswith(IMG_EXTENSIONS) else name
        if stem in found:
            raise UserError(f"{where}: '{stem}' is listed twice ({found[stem]} and {name}); keep one")
        found[stem] = name
    return found


class FolderSource:
    """Image files below ``root``: every PNG/JPEG (sorted), the ones a meta-info file lists, or ``listed``."""

    def __init__(self, root: str, key: Key, meta_info_file: Optional[str] = None,
                 listed: Optional[List[str]] = None, meta_key: Key = "meta_info_file") -> None:
        if not os.path.isdir(root):
            raise OptionError(_path(key), f"folder '{root}' does not exist")
        self.root = root
        if listed is not None:  # names known already (from the other side of a pair): no scan
            self.by_stem = _by_stem(listed, root)
        elif meta_info_file:
            self.by_stem = _by_stem([name for name, _ in read_meta_info(meta_info_file, meta_key)], meta_info_file)
        else:
            self.by_stem = images_by_stem(root)
        if not self.by_stem:
            raise OptionError(_path(key), f"no PNG/JPEG images in '{root}'")

    def where(self, name: str) -> str:
        return os.path.join(self.root, name)

    def read(self, name: str) -> bytes:
        path = self.where(name)
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise UserError(f"{path}: cannot read image ({exc.strerror or exc})") from exc

    def size(self, name: str) -> Tuple[int, int]:
        """(width, height) from the file header."""
        return image_size(self.where(name))


class LmdbSource:
    """The images of an LMDB in BasicSR's layout. The environment opens on first read in each process (a
    DataLoader worker never inherits its parent's handle), read-only and without locks: many readers, no
    writer."""

    def __init__(self, root: str, key: Key, meta_info_file: Optional[str] = None,
                 meta_key: Key = "meta_info_file") -> None:
        if not os.path.isfile(os.path.join(root, "data.mdb")):
            raise OptionError(_path(key), f"'{root}' is not an LMDB folder (no data.mdb in it); make one with "
                                      "scripts/create_lmdb.py, or use io_backend: {type: disk} for a folder")
        try:
            import lmdb  # noqa: F401  (checked here, at the option check, not in a loader worker)
        except ImportError as exc:
            raise OptionError(("io_backend",), "reading LMDB needs the lmdb package: pip install lmdb") from exc
        self.root = root
        meta = meta_info_file or os.path.join(root, META_INFO_NAME)
        entries = read_meta_info(meta, meta_key if meta_info_file else key)
        self.by_stem = _by_stem([name for name, _ in entries], meta)
        self.shapes = {name: shape for name, shape in entries}

    def where(self, name: str) -> str:
        return f"{self.root}:{self._key(name)}"

    @staticmethod
    def _key(name: str) -> str:
        return os.path.splitext(name)[0] if name.lower().endswith(IMG_EXTENSIONS) else name

    def read(self, name: str) -> bytes:
        with _lmdb_env(self.root).begin(write=False) as txn:
            value = txn.get(self._key(name).encode("utf-8"))
        if value is None:
            raise UserError(f"{self.where(name)}: not in the LMDB (meta_info lists it); recreate the LMDB")
        return bytes(value)

    def size(self, name: str) -> Tuple[int, int]:
        shape = self.shapes.get(name)
        if shape is None:
            raise UserError(f"{self.where(name)}: meta_info gives no (h,w,c) size")
        return shape[1], shape[0]



_ENVS: Dict[str, Tuple[int, Any]] = {}  # LMDB path -> (process id, environment): one per path and process


def _lmdb_env(root: str) -> Any:
    """This process's read-only environment of ``root``, opened on first use. LMDB allows one per path and
    process, shared by every dataset reading it; a forked DataLoader worker finds its parent's in this table
    (unusable after a fork): it closes that copy, which unmaps it in the worker only, and opens its own."""
    import lmdb

    pid, env = _ENVS.get(root, (None, None))
    if env is not None and pid == os.getpid():
        return env
    if env is not None:
        env.close()
    path = os.path.realpath(root)
    for other, (other_pid, other_env) in _ENVS.items():  # the same LMDB under another name
        if other_pid == os.getpid() and os.path.realpath(other) == path:
            _ENVS[root] = (other_pid, other_env)
            return other_env
    env = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False, max_readers=2048)
    _ENVS[root] = (os.getpid(), env)
    return env


class MultiSource:
    """Several folders (or LMDBs) read as one set: a name is ``<i><sep><name in source i>``, so equal names in
    two folders stay two images, and GT folder i pairs with LQ folder i (their names share the prefix)."""

    def __init__(self, parts: List["FolderSource | LmdbSource"]) -> None:
        self.parts = parts
        self.by_stem = {f"{i}{os.sep}{stem}": f"{i}{os.sep}{name}"
                        for i, part in enumerate(parts) for stem, name in part.by_stem.items()}

    def _split(self, name: str) -> Tuple["FolderSource | LmdbSource", str]:
        index, _, rest = name.partition(os.sep)
        return self.parts[int(index)], rest

    def where(self, name: str) -> str:
        part, rest = self._split(name)
        return part.where(rest)

    def read(self, name: str) -> bytes:
        part, rest = self._split(name)
        return part.read(rest)

    def size(self, name: str) -> Tuple[int, int]:
        part, rest = self._split(name)
        return part.size(rest)


ImageSource = FolderSource | LmdbSource | MultiSource


def open_source(root: str, key: Key, io_backend: Optional[object], meta_info_file: Optional[str],
                meta_key: Key = "meta_info_file") -> "FolderSource | LmdbSource":
    """The source of ``io_backend`` (checked by the option loader: ``disk``, the default, or ``lmdb``)."""
    kind = dict(io_backend or {}).get("type", "disk")  # type: ignore[call-overload]
    if kind == "lmdb":
        return LmdbSource(root, key, meta_info_file, meta_key)
    if kind != "disk":
        raise OptionError(("io_backend",), f"type '{kind}' is not supported; supported: {', '.join(IO_BACKENDS)}")
    return FolderSource(root, key, meta_info_file, meta_key=meta_key)


def open_sources(roots: Roots, key: str, io_backend: Optional[object],
                 meta_info_file: Optional[Roots]) -> ImageSource:
    """One folder's source, or for a list of folders (traiNNer-redux's ``dataroot_gt: [a, b]``) one source of
    them all, each with its own ``meta_info_file`` when that is a list of as many files (in the same order)."""
    if isinstance(roots, str):
        if meta_info_file is not None and not isinstance(meta_info_file, str):
            raise OptionError(("meta_info_file",), f"a list, for the one folder of {key}; give one file")
        return open_source(roots, key, io_backend, meta_info_file)
    metas = _per_folder(meta_info_file, len(roots), key)
    listed = not (meta_info_file is None or isinstance(meta_info_file, str))
    parts = [open_source(root, (key, i), io_backend, meta, ("meta_info_file", i) if listed else "meta_info_file")
             for i, (root, meta) in enumerate(zip(roots, metas, strict=True))]
    return parts[0] if len(parts) == 1 else MultiSource(parts)


def _per_folder(meta_info_file: Optional[Roots], folders: int, key: str) -> List[Optional[str]]:
    if not folders:
        raise OptionError((key,), "an empty list; name one folder or more")
    if meta_info_file is None or isinstance(meta_info_file, str):
        if isinstance(meta_info_file, str) and folders > 1:
            raise OptionError(("meta_info_file",), f"one file for the {folders} folders of {key}; give a list of "
                                                   f"{folders} files, one per folder in the same order")
        return [meta_info_file] * folders
    if len(meta_info_file) != folders:
        raise OptionError(("meta_info_file",), f"{len(meta_info_file)} files for the {folders} folders of {key}; "
                                               "give one per folder, in the same order")
    return list(meta_info_file)


def listed_sources(roots: Roots, key: str, names: List[str]) -> ImageSource:
    """The folders ``roots`` holding exactly ``names`` (as a source of ``roots`` names them), without a scan:
    the LQ side of a pair list made from the GT side's meta info."""
    if isinstance(roots, str) or len(roots) == 1:
        root = roots if isinstance(roots, str) else roots[0]
        return FolderSource(root, key if isinstance(roots, str) else (key, 0), listed=names)
    per: List[List[str]] = [[] for _ in roots]
    for name in names:
        index, _, rest = name.partition(os.sep)
        per[int(index)].append(rest)
    return MultiSource([FolderSource(root, (key, i), listed=part) for i, (root, part) in enumerate(zip(roots, per,
                                                                                                    strict=True))])


def check_pairing(roots_gt: Roots, roots_lq: Roots) -> None:
    """GT and LQ folders pair in order: as many of each (one folder each, or two lists of one length)."""
    count_gt = 1 if isinstance(roots_gt, str) else len(roots_gt)
    count_lq = 1 if isinstance(roots_lq, str) else len(roots_lq)
    if count_gt != count_lq:
        raise OptionError(("dataroot_lq",), f"{count_lq} folder(s) for the {count_gt} of dataroot_gt; the folders "
                                            "pair in order (GT folder i with LQ folder i): give as many")
