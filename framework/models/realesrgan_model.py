"""Real-ESRGAN training: LR inputs synthesised from the GT batch on the training device (or, with
``degradation.high_order_degradation: false``, the stored LR images of RealESRGANPairedDataset), then the SRModel
(RealESRNetModel, the PSNR-oriented first stage) or SRGANModel (RealESRGANModel) step.

Per iteration, as Real-ESRGAN's models: the GT crops (8-bit, from :class:`~framework.data.realesrgan.
RealESRGANDataset`) are degraded with their kernels (:class:`~framework.data.synthesis.Degradation`, the keys
of the ``degradation`` section), cropped to ``gt_size``, and exchanged with the training-pair pool
(``queue_size``); the GT is sharpened (USM) for the losses that ask for it.

Exact resume: the degradation's random draws come from generators derived from (``manual_seed``, iteration,
rank), so the resumed iteration draws what the uninterrupted one drew; the pool, the one piece of state, is
part of :meth:`state_dict` (group ``pair_pool``), held as 8-bit integers, which the GT and the rounded LR
inputs are exactly.
"""
from __future__ import annotations

import dataclasses
import logging
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from ..data.image_io import to_float, to_integer
from ..data.synthesis import DegradationOptions, degradation_from, degradation_problems, paired_crop, usm_sharp
from ..distributed import DistContext
from ..errors import OptionError
from ..network_spec import check_patch_size
from ..option_rules import DatasetSpec, OptionSection, keys_valid, spec_of
from ..options import Options, TrainingOptions, as_training
from ..registry import DATASET_REGISTRY, MODEL_REGISTRY
from ..rng import derived_generator
from ..schema import Problem
from .base import Batch, DryRun
from .gan_model import SRGANModel
from .sr_model import SRModel

logger = logging.getLogger(__name__)

POOL_GROUP = "pair_pool"

DEGRADATION = OptionSection(
    DegradationOptions, doc="RealESRNetModel / RealESRGANModel: the synthetic degradation; see `degradation.*`.",
    notes="Real-ESRGAN's option files write these keys at the top level: move them into this section "
          "(`scripts/convert_options.py` does). The blur kernels are RealESRGANDataset's keys (`datasets.train`). "
          "See [Real-world SR (Real-ESRGAN)](gan-and-real-esrgan.md#real-world-sr-real-esrgan).",
    unused_because=" (it trains on the dataset's LR images)")


def degradation_of(options: Options) -> DegradationOptions:
    """The options' ``degradation`` section (its defaults where not given)."""
    return options.section("degradation", DegradationOptions)


def patch_size(options: Options) -> Optional[int]:
    """The GT patch size the degraded crops are cut to: ``degradation.gt_size``, else ``datasets.train.gt_size``."""
    train_set = options.train_set
    data = train_set.dataset.kwargs.get("gt_size") if train_set is not None and train_set.dataset else None
    return degradation_of(options).gt_size or data


def check_synthesis(options: TrainingOptions, problems: List[Problem]) -> None:
    """The degradation section's own rules, and the training data it goes with: GT images only
    (RealESRGANDataset) to synthesise from, stored LR/HR pairs with ``high_order_degradation: false``; a patch
    size that is a multiple of the scale and a pool that holds whole loader batches."""
    if not keys_valid(problems, ("degradation",)):
        return
    opts = degradation_of(options)
    problems.extend(degradation_problems(opts))
    if keys_valid(problems, ("scale",), ("network_g",)):
        check_patch_size(options.network_g, options.scale, opts.gt_size, ("degradation", "gt_size"), problems)
    train_set = options.train_set
    dataset = train_set.dataset if train_set is not None else None
    if train_set is None or dataset is None or dataset.type not in DATASET_REGISTRY:
        return
    gt_only = spec_of(DATASET_REGISTRY.get(dataset.type), DatasetSpec).gt_only
    where = ("datasets", "train", "type")
    if gt_only and not opts.high_order_degradation:
        problems.append(Problem(where, f"{dataset.type} gives GT images only, and degradation.high_order_degradation: "
                                       "false trains on stored LR images: use RealESRGANPairedDataset (dataroot_gt, "
                                       "dataroot_lq), or set it to true"))
    elif not gt_only and opts.high_order_degradation:
        problems.append(Problem(where, f"{options.model_type} synthesises its LR inputs from GT images and kernels: "
                                       f"use RealESRGANDataset (not {dataset.type}), or set "
                                       "degradation.high_order_degradation: false to train on "
                                       f"{dataset.type}'s LR images as they are"))
    if not opts.high_order_degradation or not keys_valid(problems, ("datasets", "train")):
        return
    data_gt_size = dataset.kwargs.get("gt_size")
    gt_size = patch_size(options)
    if opts.gt_size is not None and data_gt_size is not None and opts.gt_size != data_gt_size:
        problems.append(Problem(("degradation", "gt_size"), f"{opts.gt_size} differs from datasets.train.gt_size "
                                                            f"{data_gt_size}; make them equal (or drop one)"))
    elif gt_size is None or gt_size % options.scale:
        problems.append(Problem(("degradation", "gt_size"), f"{gt_size}: needs a multiple of scale {options.scale} "
                                                            "(here or in datasets.train.gt_size)"))
    batch = train_set.batch_size_per_gpu * options.train.accumulate_steps
    if opts.queue_size % batch:
        problems.append(Problem(("degradation", "queue_size"), f"{opts.queue_size} is not a multiple of the loader "
                                                               f"batch {batch} (batch_size_per_gpu x "
                                                               "accumulate_steps); 0 turns the pool off"))


class PairPool:
    """Real-ESRGAN's training-pair pool: fills with the first batches (returning them unchanged), then per
    batch shuffles itself, hands out its first ``b`` pairs and keeps the new ones in their place. Pairs are
    stored as uint8 (exact for 8-bit GT and LR) on the training device."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lq: Optional[torch.Tensor] = None
        self.gt: Optional[torch.Tensor] = None
        self.filled = 0

    def exchange(self, lq: torch.Tensor, gt: torch.Tensor, gen: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
        b = lq.shape[0]
        if self.lq is None or self.gt is None:
            self.lq = lq.new_zeros((self.size, *lq.shape[1:]))
            self.gt = gt.new_zeros((self.size, *gt.shape[1:]))
        if self.filled < self.size:
            self.lq[self.filled:self.filled + b] = lq
            self.gt[self.filled:self.filled + b] = gt
            self.filled += b
            return lq, gt
        order = torch.randperm(self.size, generator=gen).to(lq.device)
        self.lq, self.gt = self.lq[order], self.gt[order]
        out_lq, out_gt = self.lq[:b].clone(), self.gt[:b].clone()
        self.lq[:b], self.gt[:b] = lq, gt
        return out_lq, out_gt

    def state_dict(self) -> Dict[str, Any]:
        """The filled part only (a pool still filling saves less)."""
        empty = torch.zeros(0, dtype=torch.uint8)
        return {"size": self.size, "filled": self.filled,
                "lq": self.lq[:self.filled] if self.lq is not None else empty,
                "gt": self.gt[:self.filled] if self.gt is not None else empty}

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device) -> None:
        if int(state["size"]) != self.size:
            logger.warning(f"degradation.queue_size: {self.size}, the checkpoint's pool held {state['size']}: the "
                           "pool starts empty (the run is not an exact continuation)")
            return
        self.filled = int(state["filled"])
        self.lq = self.gt = None
        if self.filled:
            lq, gt = state["lq"].to(device), state["gt"].to(device)
            self.lq = lq.new_zeros((self.size, *lq.shape[1:]))
            self.gt = gt.new_zeros((self.size, *gt.shape[1:]))
            self.lq[:self.filled], self.gt[:self.filled] = lq, gt


def sharpened_targets(gt: torch.Tensor, targets: Mapping[str, bool]) -> Dict[str, torch.Tensor]:
    """The sharpened (USM) GT under each loss's target key that asks for it (``gt_pix``, ``gt_percep``,
    ``gt_gan``), computed once."""
    wanted = [key for key, sharp in targets.items() if key != "source" and sharp]
    if not wanted:
        return {}
    sharp = usm_sharp(gt)
    return {key: sharp for key in wanted}


class Synthesis:
    """The model's half of the pipeline: batch -> degraded, cropped, pooled training pairs with their
    (sharpened) targets."""

    def __init__(self, options: TrainingOptions, device: torch.device, targets: Mapping[str, bool]) -> None:
        opts = degradation_of(options)
        gt_size = patch_size(options)
        if gt_size is None:  # check_synthesis reports it with the options
            raise OptionError(("degradation", "gt_size"), "needs a GT patch size here or in datasets.train.gt_size")
        self.gt_size = int(gt_size)
        self.scale = options.scale
        self.seed = options.manual_seed
        self.device = device
        self.degrade = degradation_from(opts, options.scale)
        self.pool = PairPool(opts.queue_size) if opts.queue_size else None
        # "gt_pix" / "gt_percep" / "gt_gan": whether that loss's target is sharpened; "source": whether the
        # degradation starts from the sharpened GT
        self.targets = dict(targets)
        self.rank = 0  # the process's rank under torchrun (RealESRGANModel.distribute): its own randomness

    def generators(self, iteration: int) -> Tuple[torch.Generator, torch.Generator]:
        """The iteration's CPU and device generators (their seeds depend on nothing else)."""
        return (derived_generator(self.seed, iteration, self.rank, 0),
                derived_generator(self.seed, iteration, self.rank, 1, device=self.device))

    @torch.no_grad()
    def make(self, batch: Batch, iteration: int, *, use_pool: bool = True) -> Dict[str, Any]:
        """The training batch of ``iteration``: ``lq``, ``gt`` and the sharpened targets (``gt_pix`` ...) that
        the losses ask for; ``use_pool=False`` (the dry run, the grid tool) leaves the pool untouched."""
        if "kernel1" not in batch:
            raise OptionError(("datasets", "train", "type"), "the training batches carry no kernels: use "
                                                             "RealESRGANDataset")
        cpu, device_gen = self.generators(iteration)
        gt8 = batch["gt"].to(self.device, non_blocking=True)
        gt = to_float(gt8)
        source = usm_sharp(gt) if self.targets.get("source") else gt
        lq = self.degrade(source, batch["kernel1"].to(self.device), batch["kernel2"].to(self.device),
                          batch["sinc_kernel"].to(self.device), cpu, device_gen)
        (gt8,), lq = paired_crop([gt8], lq, self.gt_size, self.scale, cpu)
        lq8 = to_integer(lq)  # lq is on 8-bit levels already: exact
        if self.pool is not None and use_pool:
            lq8, gt8 = self.pool.exchange(lq8, gt8.contiguous(), cpu)
        gt = to_float(gt8)
        return {"lq": to_float(lq8).contiguous(), "gt": gt, **sharpened_targets(gt, self.targets)}

    def state_dict(self) -> Dict[str, Any]:
        return self.pool.state_dict() if self.pool is not None else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.pool is not None and state:
            self.pool.load_state_dict(state, self.device)


class _Synthesising:
    """What RealESRNetModel and RealESRGANModel add to their base model: the synthesis before each step and
    the dry run, and the pool in the training state.

    With ``degradation.high_order_degradation: false`` (Real-ESRGAN's recipe for paired data, with
    RealESRGANPairedDataset) nothing is synthesised: the batch's LR images are used as they are, and only the
    sharpened GT targets of :meth:`paired_targets` are added."""

    synthesis: Optional[Synthesis] = None

    def __init__(self, options: Options, device: torch.device) -> None:
        super().__init__(options, device)  # type: ignore[call-arg]
        self.targets: Dict[str, bool] = {}
        training = as_training(options)
        if training is not None:
            if degradation_of(training).high_order_degradation:
                self.synthesis = Synthesis(training, device, self.synthesis_targets(training))
            else:
                self.targets = self.paired_targets(training)

    @classmethod
    def check_options(cls, options: TrainingOptions, problems: List[Problem]) -> None:
        super().check_options(options, problems)  # type: ignore[misc]
        check_synthesis(options, problems)

    def distribute(self, dist: DistContext) -> None:
        super().distribute(dist)  # type: ignore[misc]
        if self.synthesis is not None:
            self.synthesis.rank = dist.rank

    @staticmethod
    def synthesis_targets(options: Options) -> Dict[str, bool]:
        """Which GT each loss compares with (``gt_pix``, ``gt_percep``, ``gt_gan``: sharpened or not) and
        whether the degradation starts from the sharpened GT (``source``)."""
        raise NotImplementedError

    @staticmethod
    def paired_targets(options: Options) -> Dict[str, bool]:
        """Which GT each loss compares with when training on stored LR images."""
        raise NotImplementedError

    def _inputs(self, batch: Batch, iteration: int, use_pool: bool = True) -> Batch:
        if self.synthesis is not None:
            return self.synthesis.make(batch, iteration, use_pool=use_pool)
        gt = batch["gt"].to(self.device, non_blocking=True)  # type: ignore[attr-defined]
        return {**batch, "gt": gt, **sharpened_targets(gt, self.targets)}

    def train_step(self, batch: Batch, iteration: int) -> Dict[str, torch.Tensor]:
        return super().train_step(self._inputs(batch, iteration), iteration)  # type: ignore[misc]

    def dry_run(self, batch: Batch) -> DryRun:
        return super().dry_run(self._inputs(batch, 0, use_pool=False))  # type: ignore[misc]

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()  # type: ignore[misc]
        if self.synthesis is not None:
            state[POOL_GROUP] = self.synthesis.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)  # type: ignore[misc]
        if self.synthesis is not None:
            self.synthesis.load_state_dict(state.get(POOL_GROUP) or {})


@MODEL_REGISTRY.register()
class RealESRNetModel(_Synthesising, SRModel):
    """Real-ESRNet: the PSNR-oriented first stage; ``degradation.gt_usm`` sharpens the GT that is degraded and
    compared with."""

    requirements = dataclasses.replace(SRModel.requirements, synthesizes_inputs=True,
                                       sections=MappingProxyType({"degradation": DEGRADATION}))

    @staticmethod
    def synthesis_targets(options: Options) -> Dict[str, bool]:
        usm = degradation_of(options).gt_usm
        return {"source": usm, "gt_pix": usm, "gt_percep": usm}

    @staticmethod
    def paired_targets(options: Options) -> Dict[str, bool]:
        return {}  # Real-ESRGAN: gt_usm sharpens only the GT that is degraded


@MODEL_REGISTRY.register()
class RealESRGANModel(_Synthesising, SRGANModel):
    """Real-ESRGAN: the GAN stage; the degradation starts from the sharpened GT, and each loss compares with the
    sharpened GT or not (``l1_gt_usm``, ``percep_gt_usm``, ``gan_gt_usm``)."""

    requirements = dataclasses.replace(SRGANModel.requirements, synthesizes_inputs=True,
                                       sections=MappingProxyType({"degradation": DEGRADATION}))

    @staticmethod
    def synthesis_targets(options: Options) -> Dict[str, bool]:
        opts = degradation_of(options)
        return {"source": True, "gt_pix": opts.l1_gt_usm, "gt_percep": opts.percep_gt_usm, "gt_gan": opts.gan_gt_usm}

    @staticmethod
    def paired_targets(options: Options) -> Dict[str, bool]:
        targets = RealESRGANModel.synthesis_targets(options)
        targets.pop("source")
        return targets
