"""Super-resolution datasets: GT/LQ pairs from two folders, or GT only with LQ made by bicubic downsampling.

Indices may be plain ints (validation) or ``(epoch, position)`` keys from :class:`ResumableSampler`; the
image is ``position % len``, and the sample's randomness is seeded from (seed, epoch, position) alone.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch.utils.data import Dataset

from ..errors import OptionError, UserError
from ..registry import DATASET_REGISTRY
from ..rng import derived_generator
from .degradations import bicubic_downsample
from .backends import (FolderSource, ImageSource, LmdbSource, MultiSource, Roots, check_pairing, listed_sources,
                       open_sources, read_pair_list)
from .image_io import decode_bytes, to_float
from .transforms import augment, crop_origin, mod_crop, paired_random_crop, pair_scale_problem

Key = Union[int, Tuple[int, int]]


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator for one sample, independent of every other (seed, epoch, index)."""
    return derived_generator(seed, epoch, index)


class _SRDataset(Dataset):
    def __init__(self, scale: int, seed: int, train: bool, gt_size: Optional[int], use_hflip: bool,
                 use_rot: bool) -> None:
        self.scale = scale
        self.seed = seed
        self.train = train
        self.gt_size = gt_size
        self.use_hflip = use_hflip
        self.use_rot = use_rot
        if train and gt_size is None:
            raise OptionError(("gt_size",), "required for a training set (the size of the random GT crop)")
        if gt_size is not None and (gt_size < scale or gt_size % scale):
            raise OptionError(("gt_size",), f"{gt_size} is not a positive multiple of scale {scale}")

    def names(self) -> list:
        raise NotImplementedError

    def size_problems(self) -> List[Tuple[str, str]]:
        """``[(key, problem)]`` of image sizes, from the file headers of every image (no decoding); the key is
        the option to fix (``gt_size``), or empty for the data itself."""
        raise NotImplementedError

    def verify_files(self) -> None:
        """Every image readable, pairs of the right scale, every image large enough for ``gt_size``."""
        problems = self.size_problems()
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            key = problems[0][0]
            raise OptionError((key,) if key else (), "; ".join(text for _, text in problems[:3]) + more)

    def _crop_fits(self, path: str, width: int, height: int, needed: int) -> Optional[Tuple[str, str]]:
        if self.train and (width < needed or height < needed):
            return "gt_size", f"{path}: {width}x{height} is smaller than the crop {needed}x{needed}; lower gt_size"
        return None

    def load_pair(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, str, str]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, key: Key) -> Dict[str, object]:
        epoch, position = key if isinstance(key, tuple) else (0, key)
        index = position % len(self)
        gt, lq, gt_path, lq_path = self.load_pair(index)
        if self.train:
            assert self.gt_size is not None  # required for training (checked in __init__)
            gen = sample_generator(self.seed, epoch, position)
            gt, lq = paired_random_crop(gt, lq, self.gt_size, self.scale, gen, gt_path)
            gt, lq = augment([gt, lq], self.use_hflip, self.use_rot, gen)
        gt, lq = to_float(gt), to_float(lq)  # after the crop: only the kept pixels are converted
        return {"lq": lq, "gt": gt, "lq_path": lq_path, "gt_path": gt_path,
                "name": os.path.splitext(self.names()[index])[0]}


@DATASET_REGISTRY.register()
class PairedImageDataset(_SRDataset):
    """GT and LQ images; a GT image ``x.png`` pairs with the LQ image ``filename_tmpl.format('x')`` + any
    image extension. Unmatched images are an error that lists them, never silently dropped.

    ``io_backend: {type: lmdb}``: ``dataroot_gt`` and ``dataroot_lq`` are LMDB folders (their
    ``meta_info.txt`` lists the images). ``meta_info_file``: the GT images to use, one name a line (BasicSR's
    ``name (h,w,c) compression`` lines too); with folders, each LQ image is then the GT name through
    ``filename_tmpl`` with the GT's extension, as in BasicSR, and no folder is scanned.

    ``dataroot_gt`` / ``dataroot_lq`` may each be a list of folders (traiNNer-redux's): GT folder i pairs with
    LQ folder i, and the set is the union of their pairs; ``meta_info_file`` is then a list too, one per GT
    folder.
    """

    def __init__(self, dataroot_gt: Union[str, Tuple[str, ...]], dataroot_lq: Union[str, Tuple[str, ...]],
                 scale: int, seed: int = 0, train: bool = False, gt_size: Optional[int] = None,
                 use_hflip: bool = True, use_rot: bool = True, filename_tmpl: str = "{}",
                 io_backend: Optional[Mapping[str, Any]] = None,
                 meta_info_file: Union[str, Tuple[str, ...], None] = None) -> None:
        super().__init__(scale, seed, train, gt_size, use_hflip, use_rot)
        self.dataroot_gt, self.dataroot_lq = dataroot_gt, dataroot_lq
        _check_template(filename_tmpl)
        check_pairing(dataroot_gt, dataroot_lq)
        self.gt_source = open_sources(dataroot_gt, "dataroot_gt", io_backend, meta_info_file)
        self.lq_source: ImageSource
        if meta_info_file and _folders(self.gt_source):
            # BasicSR: the LQ names follow from the GT list, no scan of the LQ folder
            self.pairs = [(name, _lq_name(stem, filename_tmpl) + os.path.splitext(name)[1])
                          for stem, name in self.gt_source.by_stem.items()]
            self.lq_source = listed_sources(dataroot_lq, "dataroot_lq", [lq for _, lq in self.pairs])
        else:
            self.lq_source = open_sources(dataroot_lq, "dataroot_lq", io_backend, None)
            self.pairs = pair_names(self.gt_source.by_stem, self.lq_source.by_stem, filename_tmpl,
                                    _shown(dataroot_gt), _shown(dataroot_lq))
        self._names = [gt for gt, _ in self.pairs]  # once: __len__ and __getitem__ run for every sample

    def names(self) -> list:
        return self._names

    def size_problems(self) -> List[Tuple[str, str]]:
        problems: List[Tuple[str, str]] = []
        for gt_name, lq_name in self.pairs:
            gt_path, lq_path = self.gt_source.where(gt_name), self.lq_source.where(lq_name)
            lq_wh = self.lq_source.size(lq_name)
            mismatch = pair_scale_problem(gt_path, self.gt_source.size(gt_name), lq_wh, self.scale)
            if mismatch:
                problems.append(("", mismatch))
            elif self.gt_size:
                issue = self._crop_fits(lq_path, *lq_wh, self.gt_size // self.scale)
                if issue:
                    problems.append((issue[0], issue[1].replace(
                        "the crop", f"the LQ crop (gt_size {self.gt_size} / scale {self.scale} =)")))
        return problems

    def load_pair(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, str, str]:
        gt_name, lq_name = self.pairs[index]
        gt_path, lq_path = self.gt_source.where(gt_name), self.lq_source.where(lq_name)
        gt = decode_bytes(self.gt_source.read(gt_name), gt_path)
        lq = decode_bytes(self.lq_source.read(lq_name), lq_path)
        (_, h_gt, w_gt), (_, h_lq, w_lq) = gt.shape, lq.shape
        mismatch = pair_scale_problem(gt_path, (w_gt, h_gt), (w_lq, h_lq), self.scale, lq_path)
        if mismatch:
            raise UserError(mismatch)
        return gt[:, :h_lq * self.scale, :w_lq * self.scale], lq, gt_path, lq_path


def _folders(source: ImageSource) -> bool:
    """Whether ``source`` reads folders (not LMDBs)."""
    parts = source.parts if isinstance(source, MultiSource) else [source]
    return not any(isinstance(part, LmdbSource) for part in parts)


def _shown(roots: Roots) -> str:
    return roots if isinstance(roots, str) else ", ".join(roots)


@DATASET_REGISTRY.register()
class RealESRGANPairedDataset(PairedImageDataset):
    """Real-ESRGAN's dataset for fine-tuning on your own LR/HR pairs, with its keys: GT and LQ crops cut at the
    same place (``gt_size``), flips and rotation (``use_hflip``, ``use_rot``), pairs by name
    (``filename_tmpl``) or from ``meta_info``, Real-ESRGAN's pair list: one ``gt_name, lq_name`` a line,
    relative to ``dataroot_gt`` and ``dataroot_lq`` (as its ``generate_meta_info_pairdata.py`` writes it).

    With RealESRNetModel / RealESRGANModel and ``degradation.high_order_degradation: false`` (Real-ESRGAN's
    paired recipe) the model trains on these LR images as they are: no synthetic degradation is added; the GT is
    sharpened for the losses that ask for it (``l1_gt_usm``, ``percep_gt_usm``, ``gan_gt_usm``). SRModel and the
    GAN models use it as PairedImageDataset.
    """

    def __init__(self, dataroot_gt: Union[str, Tuple[str, ...]], dataroot_lq: Union[str, Tuple[str, ...]],
                 scale: int, seed: int = 0, train: bool = False, gt_size: Optional[int] = None,
                 use_hflip: bool = True, use_rot: bool = True,
                 filename_tmpl: str = "{}", io_backend: Optional[Mapping[str, Any]] = None,
                 meta_info: Optional[str] = None) -> None:
        if meta_info is None:
            super().__init__(dataroot_gt, dataroot_lq, scale, seed, train, gt_size, use_hflip, use_rot,
                             filename_tmpl, io_backend)
            return
        if not isinstance(dataroot_gt, str) or not isinstance(dataroot_lq, str):
            raise OptionError(("meta_info",), "lists the pairs of one GT and one LQ folder: give single folders with "
                                              "it, or lists of folders without it (pairs matched by name)")
        if io_backend is not None and io_backend.get("type") != "disk":
            raise OptionError(("meta_info",), "lists image files in folders; with io_backend lmdb the LMDB's own "
                                              "meta_info.txt lists the images: remove meta_info")
        _SRDataset.__init__(self, scale, seed, train, gt_size, use_hflip, use_rot)
        self.dataroot_gt, self.dataroot_lq = dataroot_gt, dataroot_lq
        self.pairs = read_pair_list(meta_info)
        self.gt_source = FolderSource(dataroot_gt, "dataroot_gt", listed=[gt for gt, _ in self.pairs])
        self.lq_source = FolderSource(dataroot_lq, "dataroot_lq", listed=[lq for _, lq in self.pairs])
        self._names = [gt for gt, _ in self.pairs]


def _check_template(filename_tmpl: str) -> None:
    try:
        filename_tmpl.format("x")
    except (ValueError, IndexError, KeyError) as exc:
        raise OptionError(("filename_tmpl",), f"'{filename_tmpl}' is not a valid template with one {{}} for the "
                          f"GT name ({exc})") from exc


def _lq_name(stem: str, filename_tmpl: str) -> str:
    if filename_tmpl == "{}":
        return stem
    folder, sep, base = stem.rpartition(os.sep)
    return folder + sep + filename_tmpl.format(base)


def pair_names(gt_files: Dict[str, str], lq_files: Dict[str, str], filename_tmpl: str, dataroot_gt: str,
               dataroot_lq: str) -> list:
    """[(gt_name, lq_name)] from ``{stem: name}`` of both sides; raises listing unmatched names."""
    lq_left = dict(lq_files)
    pairs, missing = [], []
    for stem, gt_rel in gt_files.items():
        lq_rel = lq_left.pop(_lq_name(stem, filename_tmpl), None)
        if lq_rel is None:
            missing.append(gt_rel)
        else:
            pairs.append((gt_rel, lq_rel))
    if missing or lq_left:
        raise _unmatched(dataroot_gt, dataroot_lq, filename_tmpl, gt_files, lq_files, missing, lq_left)
    return pairs


def _unmatched(dataroot_gt: str, dataroot_lq: str, filename_tmpl: str, gt_files: Dict[str, str],
               lq_files: Dict[str, str], missing: List[str], unpaired_lq: Dict[str, str]) -> OptionError:
    """Unmatched files on either side, the LQ name the template gave the first lone GT file, and the template
    that would pair every file when the names differ by a fixed prefix or suffix (``{}x4``)."""
    parts = []
    if missing:
        first = os.path.splitext(missing[0])[0]
        parts.append(f"{len(missing)} GT file(s) without LQ in '{dataroot_lq}': {_few(missing)} (with "
                     f"filename_tmpl '{filename_tmpl}', GT {missing[0]} pairs with LQ {_lq_name(first, filename_tmpl)}"
                     ".<png|jpg|...>)")
    if unpaired_lq:
        parts.append(f"{len(unpaired_lq)} LQ file(s) without GT in '{dataroot_gt}': "
                     f"{_few(sorted(unpaired_lq.values()))}")
    better = _pairing_template(gt_files, lq_files) if missing else None
    if better is not None and better != filename_tmpl:
        parts.append(f"filename_tmpl: '{better}' pairs all {len(gt_files)}")
        return OptionError(("filename_tmpl",), "unmatched pairs: " + "; ".join(parts))
    return OptionError(("dataroot_lq",), "unmatched pairs: " + "; ".join(parts))


def _pairing_template(gt_files: Dict[str, str], lq_files: Dict[str, str]) -> Optional[str]:
    """A ``prefix{}suffix`` template under which every GT file has its own LQ file, guessed from the first GT
    name found inside an LQ name; None when there is none."""
    if len(gt_files) != len(lq_files):
        return None
    gt_name = os.path.basename(next(iter(gt_files)))
    for lq_stem in lq_files:
        lq_name = os.path.basename(lq_stem)
        at = lq_name.find(gt_name)
        if at < 0:
            continue
        escape = {ord("{"): "{{", ord("}"): "}}"}
        template = lq_name[:at].translate(escape) + "{}" + lq_name[at + len(gt_name):].translate(escape)
        if all(_lq_name(stem, template) in lq_files for stem in gt_files):
            return template
    return None


def _few(names: list, n: int = 5) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names) - n} more)" if len(names) > n else "")


@DATASET_REGISTRY.register()
class BicubicSRDataset(_SRDataset):
    """GT images only; LQ is the bicubic downsampling of the (cropped) GT, made on the fly (MATLAB's imresize,
    as ``scripts/generate_lr.py`` makes stored LR images). ``io_backend`` and ``meta_info_file``: as
    :class:`PairedImageDataset`'s; ``dataroot_gt`` may be a list of folders."""

    def __init__(self, dataroot_gt: Union[str, Tuple[str, ...]], scale: int, seed: int = 0, train: bool = False,
                 gt_size: Optional[int] = None, use_hflip: bool = True, use_rot: bool = True,
                 io_backend: Optional[Mapping[str, Any]] = None,
                 meta_info_file: Union[str, Tuple[str, ...], None] = None) -> None:
        super().__init__(scale, seed, train, gt_size, use_hflip, use_rot)
        self.dataroot_gt = dataroot_gt
        self.source = open_sources(dataroot_gt, "dataroot_gt", io_backend, meta_info_file)
        self.files = list(self.source.by_stem.values())  # sorted by the scan; a meta_info_file's order

    def names(self) -> list:
        return self.files

    def size_problems(self) -> List[Tuple[str, str]]:
        problems = []
        for rel in self.files:
            path = self.source.where(rel)
            width, height = self.source.size(rel)
            issue = self._crop_fits(path, width - width % self.scale, height - height % self.scale,
                                    self.gt_size or 0)
            if issue:
                problems.append(issue)
        return problems

    def load_pair(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, str, str]:
        gt_path = self.source.where(self.files[index])
        gt = mod_crop(to_float(decode_bytes(self.source.read(self.files[index]), gt_path)), self.scale)
        return gt, bicubic_downsample(gt, self.scale), gt_path, gt_path

    # LQ pixels a bicubic (antialiased) downsampling lets see beyond a window: 2 per side; one spare.
    _MARGIN = 3

    def __getitem__(self, key: Key) -> Dict[str, object]:
        if not self.train:
            return super().__getitem__(key)
        # Downsample only the crop plus a margin, then cut the margin off: the same LQ pixels as resizing the
        # whole image (as validation does), for a fraction of the work.
        epoch, position = key if isinstance(key, tuple) else (0, key)
        index = position % len(self)
        gt_path = self.source.where(self.files[index])
        gt = mod_crop(decode_bytes(self.source.read(self.files[index]), gt_path), self.scale)
        gen = sample_generator(self.seed, epoch, position)
        assert self.gt_size is not None  # required for training (checked in __init__)
        s, m, size = self.scale, self._MARGIN, self.gt_size // self.scale
        h_lq, w_lq = gt.shape[1] // s, gt.shape[2] // s
        top, left = crop_origin(h_lq, w_lq, size, gen, f"{gt_path}: image (at LQ size)")
        gt_crop = to_float(gt[:, top * s:(top + size) * s, left * s:(left + size) * s])
        t0, l0 = max(0, top - m), max(0, left - m)
        t1, l1 = min(h_lq, top + size + m), min(w_lq, left + size + m)
        window = bicubic_downsample(to_float(gt[:, t0 * s:t1 * s, l0 * s:l1 * s]), s)
        lq = window[:, top - t0:top - t0 + size, left - l0:left - l0 + size]
        gt_crop, lq = augment([gt_crop, lq], self.use_hflip, self.use_rot, gen)
        return {"lq": lq, "gt": gt_crop, "lq_path": gt_path, "gt_path": gt_path,
                "name": os.path.splitext(self.files[index])[0]}
