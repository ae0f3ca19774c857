"""Real-ESRGAN's training set: HR images only; per sample a GT crop and the blur kernels of its degradation.

The LR inputs are made from the batch on the training device by :class:`~framework.models.realesrgan_model.
RealESRNetModel` / ``RealESRGANModel`` (:mod:`framework.data.synthesis`); this dataset does the CPU side, as
Real-ESRGAN's own ``RealESRGANDataset``: a ``crop_pad_size`` crop (reflect-padded when the image is smaller),
flips / rotation (``use_hflip``, ``use_rot``), and three kernels: ``kernel1`` and ``kernel2`` for the two blur
stages (keys without / with the suffix ``2``) and ``sinc_kernel``, the final sinc filter (``final_sinc_prob``,
else the identity). Every draw comes from the sample's generator (seed, epoch, position), so a resumed run
gets the same crops and kernels.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F

from ..errors import OptionError, check_range
from ..option_rules import DatasetSpec, requirements_of
from ..registry import DATASET_REGISTRY, MODEL_REGISTRY
from ..schema import Component, Path_, Problem

if TYPE_CHECKING:
    from ..options import Options
from .backends import open_sources
from .datasets import Key, sample_generator
from .image_io import decode_bytes, to_float, to_integer
from .kernels import KERNEL_TYPES, BlurSettings, random_blur_kernel, random_final_sinc
from .transforms import augment, crop_origin

KernelType = Literal["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
_PROB = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
_KINDS: Tuple[KernelType, ...] = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                                  "plateau_aniso")
assert _KINDS == KERNEL_TYPES  # the option's type names exactly the kernels kernels.py makes


@dataclass(frozen=True)
class KernelSampler:
    """The three kernels of one degradation, drawn from the dataset's blur keys: the one place that draws them,
    for training samples and for the degraded validation sets of :mod:`framework.tools.degrade_images`."""

    first: BlurSettings
    second: BlurSettings
    final_sinc_prob: float
    final_range: Optional[Tuple[int, int]] = None  # traiNNer-redux's final_kernel_range

    def draw(self, gen: torch.Generator) -> Dict[str, torch.Tensor]:
        """``kernel1``, ``kernel2`` and ``sinc_kernel``, in that order of draws from ``gen``."""
        return {"kernel1": random_blur_kernel(self.first, gen), "kernel2": random_blur_kernel(self.second, gen),
                "sinc_kernel": random_final_sinc(self.final_sinc_prob, self.second.kernel_size, gen,
                                                 self.final_range)}


def needs_synthesising_model(options: Options, component: Component, path: Path_, problems: List[Problem]) -> None:
    """As the training set, a model that synthesises its LR inputs from it."""
    model = MODEL_REGISTRY.get(options.model_type) if options.model_type in MODEL_REGISTRY else None
    if path == ("datasets", "train") and model is not None and not requirements_of(model).synthesizes_inputs:
        problems.append(Problem(path + ("type",), f"{component.type} gives GT images only, for a model that "
                                                  "synthesises the LR inputs: set model_type: RealESRNetModel or "
                                                  "RealESRGANModel"))


@DATASET_REGISTRY.register()
class RealESRGANDataset(torch.utils.data.Dataset):
    """GT images (folder or LMDB, ``meta_info_file`` as the other datasets) for RealESRNetModel /
    RealESRGANModel; training only (validate with PairedImageDataset). Returns ``gt`` as 8-bit integers
    (Real-ESRGAN reads 8-bit images; the model converts on its device), ``kernel1``, ``kernel2``,
    ``sinc_kernel``."""

    # GT images only, for a model that synthesises the LR inputs; dataroot_lq of the other datasets has no
    # meaning here (the schema's message for it, not "did you mean")
    option_spec = DatasetSpec(gt_only=True, rule=needs_synthesising_model, refused=MappingProxyType({
        "dataroot_lq": "RealESRGANDataset reads HR images only and synthesises the LR inputs; remove dataroot_lq"}))

    def __init__(self, dataroot_gt: Union[str, Tuple[str, ...]], scale: int, seed: int = 0, train: bool = True,
                 gt_size: Optional[int] = None, use_hflip: bool = True, use_rot: bool = False,
                 crop_pad_size: int = 400, io_backend: Optional[Mapping[str, Any]] = None,
                 meta_info_file: Union[str, Tuple[str, ...], None] = None,
                 blur_kernel_size: int = 21, kernel_list: Tuple[KernelType, ...] = _KINDS,
                 kernel_prob: Tuple[float, ...] = _PROB, sinc_prob: float = 0.1,
                 blur_sigma: Tuple[float, float] = (0.2, 3.0), betag_range: Tuple[float, float] = (0.5, 4.0),
                 betap_range: Tuple[float, float] = (1.0, 2.0),
                 blur_kernel_size2: int = 21, kernel_list2: Tuple[KernelType, ...] = _KINDS,
                 kernel_prob2: Tuple[float, ...] = _PROB, sinc_prob2: float = 0.1,
                 blur_sigma2: Tuple[float, float] = (0.2, 1.5), betag_range2: Tuple[float, float] = (0.5, 4.0),
                 betap_range2: Tuple[float, float] = (1.0, 2.0), final_sinc_prob: float = 0.8,
                 kernel_range: Optional[Tuple[int, int]] = None, kernel_range2: Optional[Tuple[int, int]] = None,
                 final_kernel_range: Optional[Tuple[int, int]] = None) -> None:
        if not train:
            raise OptionError(("type",), "RealESRGANDataset makes training samples only (the LR inputs are "
                                         "synthesised during training); validate with PairedImageDataset")
        if gt_size is None:
            raise OptionError(("gt_size",), "required: the size of the GT patches the model trains on (the "
                                            "degraded crop_pad_size crops are cropped to it)")
        if gt_size % scale or crop_pad_size % scale or crop_pad_size < gt_size:
            raise OptionError(("crop_pad_size",), f"{crop_pad_size} must be a multiple of scale {scale} and at "
                                                  f"least gt_size {gt_size} (gt_size a multiple of the scale)")
        self.scale, self.seed, self.gt_size = scale, seed, gt_size
        self.use_hflip, self.use_rot = use_hflip, use_rot
        self.crop_pad_size = crop_pad_size
        self.dataroot_gt = dataroot_gt
        first = _settings("", blur_kernel_size, kernel_list, kernel_prob, blur_sigma, betag_range, betap_range,
                          sinc_prob, kernel_range)
        second = _settings("2", blur_kernel_size2, kernel_list2, kernel_prob2, blur_sigma2, betag_range2,
                           betap_range2, sinc_prob2, kernel_range2)
        _check_prob("final_sinc_prob", final_sinc_prob)
        _check_sizes("final_kernel_range", final_kernel_range)
        self.kernels = KernelSampler(first, second, final_sinc_prob, final_kernel_range)
        self.source = open_sources(dataroot_gt, "dataroot_gt", io_backend, meta_info_file)
        self.files = list(self.source.by_stem.values())

    def __len__(self) -> int:
        return len(self.files)

    def size_problems(self) -> List[Tuple[str, str]]:
        """Images too small to reflect-pad to ``crop_pad_size`` (a side of at most half of it)."""
        problems = []
        for rel in self.files:
            width, height = self.source.size(rel)
            if 2 * min(width, height) <= self.crop_pad_size:
                problems.append(("crop_pad_size", f"{self.source.where(rel)}: {width}x{height} is too small to "
                                                  f"pad to crop_pad_size {self.crop_pad_size} (needs sides over "
                                                  "half of it); lower crop_pad_size"))
        return problems

    def verify_files(self) -> None:
        problems = self.size_problems()
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise OptionError((problems[0][0],), "; ".join(text for _, text in problems[:3]) + more)

    def __getitem__(self, key: Key) -> Dict[str, object]:
        epoch, position = key if isinstance(key, tuple) else (0, key)
        index = position % len(self)
        path = self.source.where(self.files[index])
        img = decode_bytes(self.source.read(self.files[index]), path)
        gen = sample_generator(self.seed, epoch, position)
        gt = self._crop(img, gen, path)
        if gt.dtype != torch.uint8:  # 16-bit PNG: 8 bits, as Real-ESRGAN reads every image
            gt = to_integer(to_float(gt))
        (gt,) = augment([gt], self.use_hflip, self.use_rot, gen)
        return {"gt": gt, **self.kernels.draw(gen), "gt_path": path,
                "name": os.path.splitext(self.files[index])[0]}

    def _crop(self, img: torch.Tensor, gen: torch.Generator, path: str) -> torch.Tensor:
        """A ``crop_pad_size`` square: reflect-padded at the bottom / right where the image is smaller."""
        size = self.crop_pad_size
        _, h, w = img.shape
        if h < size or w < size:
            pad_h, pad_w = max(0, size - h), max(0, size - w)
            img = F.pad(img.float().unsqueeze(0), (0, pad_w, 0, pad_h), mode="reflect")[0].to(img.dtype)
            _, h, w = img.shape
        top, left = crop_origin(h, w, size, gen, path)
        return img[:, top:top + size, left:left + size]


def _check_prob(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise OptionError((key,), f"{value} is not a probability (0 to 1)")


def _check_sizes(key: str, size_range: Optional[Tuple[int, int]]) -> None:
    if size_range is not None:
        check_range((key,), size_range, low=1)
        if size_range[1] % 2 == 0:
            raise OptionError((key,), f"{list(size_range)}: the upper end is the padded kernel size, an odd number")


def _settings(suffix: str, size: int, kinds: Tuple[str, ...], prob: Tuple[float, ...],
              sigma: Tuple[float, float], betag: Tuple[float, float], betap: Tuple[float, float],
              sinc_prob: float, size_range: Optional[Tuple[int, int]] = None) -> BlurSettings:
    """One stage's blur keys, checked (the key names carry ``suffix``). With ``kernel_range`` (traiNNer-redux's
    key) the kernels are drawn from its odd sizes and padded to its upper end; ``blur_kernel_size`` is then not
    read, as traiNNer-redux does not read it."""
    _check_sizes(f"kernel_range{suffix}", size_range)
    if size_range is not None:
        size = size_range[1]
    if size < 1 or size % 2 == 0:
        raise OptionError((f"blur_kernel_size{suffix}",), f"{size} is not an odd kernel size (e.g. 21)")
    if len(prob) != len(kinds) or any(p < 0 for p in prob) or not sum(prob) > 0:
        raise OptionError((f"kernel_prob{suffix}",), f"{list(prob)}: one non-negative weight per entry of "
                                                     f"kernel_list{suffix} ({len(kinds)}), not all zero")
    check_range((f"blur_sigma{suffix}",), sigma, low=1e-6)
    check_range((f"betag_range{suffix}",), betag, low=1e-6)
    check_range((f"betap_range{suffix}",), betap, low=1e-6)
    _check_prob(f"sinc_prob{suffix}", sinc_prob)
    return BlurSettings(kernel_size=size, kernel_list=tuple(kinds), kernel_prob=tuple(prob), sigma=sigma,
                        betag_range=betag, betap_range=betap, sinc_prob=sinc_prob, size_range=size_range)
