"""Options: one YAML file -> validated, typed, read-only :class:`Options`.

The dataclasses below are the schema: every key, its type, default, bounds and README text. Keys follow
BasicSR's names where BasicSR has them; keys that BasicSR spells differently get a hint naming ours.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import typing
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import yaml

from .basicsr_names import inferred_model_type, model_type_fix, reading
from .errors import UserError, did_you_mean
from .loss_set import NOT_PROVIDED, all_entries
from .registry import (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY,
                       OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY)
from .schema import (Component, Path_, Problem, YamlSource, build_component, build_section, build_value,
                     coerce, format_problems, freeze, not_registered, opt, plain, signature_params)

# The dataset classes get these from the framework (top-level `scale`, `manual_seed`, and the phase).
DATASET_INJECTED = ("scale", "seed", "train")


@dataclass(frozen=True, kw_only=True)
class DatasetOptions:
    """One dataset and its loader (``datasets.train``, ``datasets.val``, ``datasets.val_2`` ...)."""

    name: str = opt("", doc="Display name in logs; defaults to the key (`train`, `val`, ...).")
    dataset: Optional[Component] = opt(None, doc="internal: the dataset type and its arguments",
                                       registry=DATASET_REGISTRY, injected=DATASET_INJECTED)
    batch_size_per_gpu: int = opt(16, doc="Samples per batch (per process). Validation always uses 1.", min=1)
    num_worker_per_gpu: Union[int, Literal["auto"]] = opt(
        "auto", doc="DataLoader worker processes; `auto` = 0 on CPU (workers would compete with the compute "
                    "threads for the same cores), min(4, cores) on CUDA.", min=0)
    dataset_enlarge_ratio: Union[int, Literal["auto"]] = opt(
        1, doc="Repeat the training set this many times per epoch (BasicSR's trick for small sets: fewer, longer "
               "epochs); `auto` (traiNNer-redux's) = max(1, 2000 x `batch_size_per_gpu` // the number of images).",
        min=1)
    pin_memory: bool = opt(True, doc="Pin loader memory when training on CUDA.")
    prefetch_mode: Optional[Literal["cpu", "cuda"]] = opt(
        None, doc="BasicSR's prefetcher choice (`~`, `cpu`, `cuda`), accepted so BasicSR files run unchanged; "
                  "it changes nothing here (the loader's workers already prefetch two batches each, and on CUDA "
                  "batches come from pinned memory without blocking), and a set value is noted in the log.")


# Keys of a dataset block that belong to the loader; the rest are arguments of the dataset `type`.
LOADER_KEYS = tuple(f.name for f in dataclasses.fields(DatasetOptions) if f.name != "dataset")
@dataclass(frozen=True, kw_only=True)
class PathOptions:
    """Where weights come from and where results go."""

    pretrain_path: Optional[str] = opt(None, doc="Weights to start from (fine-tuning): a `.pth` (`params`, "
                                                 "`params_ema` or a bare state dict) or a `.pt`. Iteration 0, "
                                                 "fresh optimizer and scheduler.")
    resume_path: Optional[str] = opt(None, doc="A full-state `.pt` to continue exactly where it stopped, or "
                                               "`auto` for this experiment's newest valid checkpoint. Wins over "
                                               "`pretrain_path`.")
    pretrain_path_d: Optional[str] = opt(None, doc="GAN models: discriminator weights to start from (to continue "
                                                   "a GAN stage in a new run), a `.pth` or a `.pt` (its "
                                                   "`net_d`); `strict_load` and `param_key` apply to it too.")
    strict_load: bool = opt(True, doc="With `pretrain_path`: every key must match. Off: load what fits and "
                                      "report missing, unexpected and shape-mismatched keys.")
    param_key: str = opt("params", doc="Which entry of a `.pth` to load (`params`, `params_ema`); falls "
                                       "back to the only key present.")
    weights_root: str = opt("weights", doc="Folder for checkpoints (`.pt`) and weight exports (`.pth`).")
    experiments_root: str = opt("experiments", doc="Folder for per-run logs, TensorBoard events, the "
                                                   "effective options and the best-model archive.")
    results_root: str = opt("results", doc="Folder for test.py: `results/<name>/` gets the metrics table, "
                                           "a log and, with `val.save_img`, the output images.")


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """The optimisation: loss, optimizer, schedule, EMA, precision and speed."""

    total_iter: int = opt(doc="Number of training iterations (optimizer steps).", min=1)
    optim_g: Component = opt(doc="Optimizer of the network: `type` (Adam, AdamW, SGD, AdanScheduleFree; Adan "
                                 "and AdamWScheduleFree with the `optim` extra, `pip install pytorch-optimizer`) "
                                 "plus its arguments (`lr`, `betas`, `weight_decay`, ...). With a schedule-free "
                                 "one (AdamWScheduleFree, AdanScheduleFree), validation and the `.pth` use the "
                                 "optimizer's averaged weights (the EMA of them with `ema_decay`).",
                             registry=OPTIMIZER_REGISTRY, injected=("params",),
                             hint="e.g. {type: Adam, lr: 2.0e-4}")
    pixel_opt: Optional[Component] = opt(None, doc="Pixel loss: `type` (L1Loss, MSELoss, CharbonnierLoss, or "
                                             "one of the `losses` family) plus `loss_weight`, `reduction`. SRModel "
                                             "needs it, `perceptual_opt` or `losses`; optional for GAN models "
                                             "(logged as `l_g_pix`).",
                                         registry=LOSS_REGISTRY, hint="e.g. {type: L1Loss, loss_weight: 1.0}")
    perceptual_opt: Optional[Component] = opt(None, doc="VGG perceptual/style loss, `type: "
                                                        "PerceptualLoss` (`layer_weights`, `vgg_type`, "
                                                        "`perceptual_weight`, `style_weight`, `criterion`, "
                                                        "`weights_path`); logged as `l_percep`, `l_style` "
                                                        "(SRModel) or `l_g_percep`, `l_g_style` (GAN models). "
                                                        "Needs torchvision's VGG ImageNet weights in the torch "
                                                        "cache or `weights_path` (never downloaded).",
                                              registry=LOSS_REGISTRY)
    gan_opt: Optional[Component] = opt(None, doc="GAN models (required there, or a `ganloss` entry in `losses`): "
                                                 "`type: GANLoss`, `gan_type` "
                                                 "(vanilla, lsgan, wgan, wgan_softplus, hinge), "
                                                 "`real_label_val`, `fake_label_val`, `loss_weight` (the "
                                                 "generator's).", registry=LOSS_REGISTRY,
                                       hint="e.g. {type: GANLoss, gan_type: vanilla, loss_weight: 5.0e-3}")
    losses: Optional[Tuple[Component, ...]] = opt(
        None, doc="traiNNer-redux's list of losses, each `{type: <name>, loss_weight: <w>, ...its keys}`; names "
                  "match ignoring case (`l1loss`, `charbonnierloss`, `mssimloss`, `msssiml1loss`, `perceptualloss`, "
                  "`hsluvloss`, `ldlloss`, `ffloss`, `cosimloss`, `sobeledgeloss`, `fliploss`, `distsloss`, "
                  "`ganloss`: see "
                  "Losses). Used "
                  "together with `pixel_opt`, `perceptual_opt`, `gan_opt` if those are given too. A loss with "
                  "`loss_weight: 0` is not built and costs nothing; each is logged as `l_<name>` (`l_g_<name>` in "
                  "GAN models); the GAN loss (one, here or in `gan_opt`) also trains the discriminator.",
        registry=LOSS_REGISTRY, hint="e.g. [{type: l1loss, loss_weight: 1.0}]")
    optim_d: Optional[Component] = opt(None, doc="GAN models (required there): the discriminator's optimizer, "
                                                 "like `optim_g`.", registry=OPTIMIZER_REGISTRY,
                                       injected=("params",), hint="e.g. {type: Adam, lr: 1.0e-4}")
    scheduler_d: Optional[Component] = opt(None, doc="GAN models: a schedule of its own for `optim_d`; none = "
                                                     "`scheduler` drives both optimizers (as in BasicSR).",
                                           registry=SCHEDULER_REGISTRY, injected=("optimizer", "warmup_iter"))
    net_d_iters: int = opt(1, doc="GAN models: the generator steps every N iterations (the discriminator "
                                  "every iteration).", min=1)
    net_d_init_iters: int = opt(0, doc="GAN models: only the discriminator steps during the first N "
                                       "iterations.", min=0)
    scheduler: Optional[Component] = opt(None, doc="Learning-rate schedule, per iteration: `MultiStepLR` "
                                                   "(`milestones`, `gamma`), `CosineAnnealingRestartLR` "
                                                   "(`periods`, `restart_weights`, `eta_min`), `CosineAnnealingLR` "
                                                   "(`T_max`, `eta_min`), `OneCycleLR` (`total_steps`, `max_lr`, "
                                                   "`pct_start`, ... as in PyTorch) or `ReduceLROnPlateau` "
                                                   "(`monitor`: a `val.metrics` name, default the first; "
                                                   "`factor`, `patience` in validations, `threshold`, "
                                                   "`cooldown`, `min_lr`); none = constant.",
                                         registry=SCHEDULER_REGISTRY, injected=("optimizer", "warmup_iter"))
    warmup_iter: int = opt(0, doc="Linear warm-up over this many iterations, ending exactly at the base "
                                  "learning rate (BasicSR's -1 also means none).", min=-1)
    ema_decay: float = opt(0.0, doc="Exponential moving average of the network weights (e.g. 0.999); 0 = off. "
                                    "With EMA, validation and the `.pth` exports use the EMA weights.",
                           min=0.0, below=1.0)
    grad_clip_norm: Optional[float] = opt(None, doc="Clip the gradient norm to this value; none = no clipping.",
                                          above=0.0)
    mixed_precision: Optional[Literal["bf16", "fp16"]] = opt(
        None, doc="Autocast the training forward pass to `bf16` or `fp16` (fp16 with a gradient scaler per "
                  "optimizer, saved in the `.pt`); none = float32. Validation and the saved weights stay float32.")
    channels_last: bool = opt(False, doc="Channels-last memory format for the networks and their inputs (faster "
                                         "convolutions with mixed precision on recent GPUs); the `.pth` files "
                                         "keep the usual layout.")
    compile: bool = opt(False, doc="`torch.compile` the training network (validation and saving use the plain "
                                   "one); needs a C++ compiler on CPU, Triton on CUDA. The first steps are slow "
                                   "while it compiles.")
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = opt(
        "default", doc="The `torch.compile` mode with `compile: true` (`reduce-overhead` and `max-autotune` use "
                       "CUDA graphs: CUDA only).")
    accumulate_steps: int = opt(1, doc="Gradient accumulation: each iteration (optimizer step) runs this many "
                                       "micro-batches of `batch_size_per_gpu`, so the batch per step is "
                                       "`batch_size_per_gpu` x this x the number of processes. Under torchrun the "
                                       "gradients are synchronised on the last micro-batch only.", min=1)


@dataclass(frozen=True, kw_only=True)
class ValOptions:
    """Validation during training (and the metrics of test.py)."""

    val_enabled: bool = opt(True, doc="traiNNer-redux's switch: `false` = no validation during training, and the "
                                      "validation sets are neither read nor checked (test.py ignores it).")
    val_freq: int = opt(5000, doc="Validate every N iterations (and at the last one).", min=1)
    save_img: bool = opt(False, doc="Save validation outputs as PNG in `experiments/<name>/visualization/`.")
    suffix: Optional[str] = opt(None, doc="test.py with `save_img`: name the images `<image>_<suffix>.png` "
                                          "(BasicSR's key); none = `<image>.png`. Validation during training "
                                          "is not affected.")
    metrics: Mapping[str, Component] = opt(MappingProxyType({}), doc="Named metrics, each `type` "
                                           "(calculate_psnr, calculate_ssim, calculate_lpips) plus `crop_border`, "
                                           "`test_y_channel`, and optionally `better: higher | lower` (BasicSR's "
                                           "key; default: the metric's own direction). The first one decides "
                                           "the best model.",
                                           registry=METRIC_REGISTRY, injected=("img", "img2"))
    tile_size: int = opt(0, doc="Validate (and test.py) in tiles of N x N input pixels, through the same code "
                                "as `scripts/inference.py --tile` (for networks that cannot take a whole "
                                "validation image in memory, e.g. transformers on 2K images); 0 = whole images. "
                                "Rounded up to the network's input multiple.", min=0)
    tile_pad: int = opt(32, doc="With `tile_size`: pixels of context around each tile, computed and cut off. With "
                                "a pad of at least the network's receptive field the metrics equal whole-image "
                                "validation (up to float rounding); a smaller one shows seams.", min=0)
    show_images: Union[int, Tuple[str, ...]] = opt(3, doc="Comparison strips in TensorBoard (and W&B) at each "
                                                          "validation: the first N images of each validation set, "
                                                          "or a list of image names (file names without "
                                                          "extension); each strip shows bicubic, output and GT of "
                                                          "the same centre crop side by side. 0 = none.", min=0)
    show_crop: int = opt(128, doc="Side of the strips' centre crop in GT pixels (smaller images: their size; "
                                  "rounded down to a multiple of `scale`).", min=1)
    # Per metric name: whether higher values are better (from `better:`, else the registered metric's own).
    higher_is_better: Mapping[str, bool] = dataclasses.field(default_factory=lambda: MappingProxyType({}),
                                                             compare=False, metadata={"internal": True})


@dataclass(frozen=True, kw_only=True)
class WandbOptions:
    """Weights & Biases (BasicSR's `logger.wandb` keys); needs `pip install wandb`."""

    project: Optional[str] = opt(None, doc="W&B project to log the run to (the same scalars and comparison strips "
                                           "as TensorBoard, from rank 0); none = no W&B (as in BasicSR's files).")
    entity: Optional[str] = opt(None, doc="W&B team or user; none = your default entity.")
    resume_id: Optional[str] = opt(None, doc="Continue this W&B run id; none = the id stored in "
                                             "`experiments/<name>/wandb_run_id` by an earlier start of this "
                                             "experiment (resuming continues the same run), else a new run.")


@dataclass(frozen=True, kw_only=True)
class LoggerOptions:
    """Console/text log, TensorBoard and checkpoint cadence."""

    print_freq: int = opt(100, doc="Log losses and learning rate every N iterations.", min=1)
    save_checkpoint_freq: int = opt(5000, doc="Write `weights/<name>_iter_<N>.pt` and `.pth` every N "
                                              "iterations (and at the end of training).", min=1)
    use_tb_logger: bool = opt(True, doc="Write TensorBoard events to `experiments/<name>/tb_logger/`.")
    wandb: Optional[WandbOptions] = opt(None, doc="Weights & Biases: see `logger.wandb.*`.")
    save_checkpoint_format: Literal["pth", "safetensors", "both"] = opt(
        "pth", doc="The deployable weights beside each `.pt` (traiNNer-redux's key): `<name>_<tag>.pth` "
                   "(`{'params': ...}`), `.safetensors` (the same tensors, flat, with the architecture, scale and "
                   "version as metadata; spandrel and chaiNNer open it), or both. The `.pt` stays a `.pt`.")
    keep_last: Optional[int] = opt(None, doc="Keep only the newest K interval checkpoints (older ones are "
                                             "deleted after the new one is safely written); none = keep all. "
                                             "Best files are never deleted.", min=1)
    async_save: Union[bool, Literal["auto"]] = opt(
        "auto", doc="Write checkpoints in the background: training pauses only to copy the state into CPU "
                    "memory (pinned on a GPU; the copy is reused, so about one state's size of RAM), and a "
                    "writer thread writes the same files, bytes and guarantees as a synchronous save. One save "
                    "at a time (the next one waits, the log says how long); a failed write stops the run at the "
                    "next step; the run waits for it before exiting. `auto` = on, except on a CPU run with one "
                    "core (the writer would take the core training runs on); `false` = save in the loop.")


ResizeModes = Tuple[Literal["area", "bilinear", "bicubic", "nearest-exact", "lanczos"], ...]
RESIZE_MODES = ("area", "bilinear", "bicubic")  # Real-ESRGAN's, each as likely


@dataclass(frozen=True, kw_only=True)
class DegradationOptions:
    """RealESRNetModel / RealESRGANModel: the synthetic degradation made on the training device (Real-ESRGAN's
    keys, which its files write at the top level). The blur kernels are the dataset's keys
    (`datasets.train`, RealESRGANDataset)."""

    gt_size: Optional[int] = opt(None, doc="The GT patch size the degraded crops are cut to; none = "
                                           "`datasets.train.gt_size` (they must agree when both are set).", min=1)
    queue_size: int = opt(180, doc="Training-pair pool: degraded pairs are kept and shuffled across batches so "
                                   "one batch mixes degradations; a multiple of the loader batch "
                                   "(`batch_size_per_gpu` x `accumulate_steps`); 0 = no pool. Saved in the `.pt` "
                                   "(8-bit: queue_size x 3 x (gt_size^2 + (gt_size/scale)^2) bytes).", min=0)
    gt_usm: bool = opt(True, doc="RealESRNetModel: sharpen the GT (unsharp masking) before degrading it; the "
                                 "loss then compares with the sharpened GT.")
    l1_gt_usm: bool = opt(True, doc="RealESRGANModel: the pixel loss compares with the sharpened GT.")
    percep_gt_usm: bool = opt(True, doc="RealESRGANModel: the perceptual loss compares with the sharpened GT.")
    gan_gt_usm: bool = opt(False, doc="RealESRGANModel: the discriminator sees the sharpened GT as real.")
    high_order_degradation: bool = opt(True, doc="Real-ESRGAN's switch: `true` synthesises the LR inputs from "
                                                 "GT images (RealESRGANDataset); `false` trains on stored LR/HR "
                                                 "pairs as they are (RealESRGANPairedDataset, Real-ESRGAN's "
                                                 "fine-tuning recipe: no degradation added, no pool; the GT is "
                                                 "sharpened where `l1_gt_usm`, `percep_gt_usm`, `gan_gt_usm` "
                                                 "say).")
    lq_usm: bool = opt(False, doc="traiNNer-redux's LQ sharpening: unsharp masking of the image before it is "
                                  "degraded, with a radius drawn per batch from `lq_usm_radius_range`.")
    lq_usm_radius_range: Tuple[int, int] = opt((1, 25), doc="With `lq_usm`: the range of the unsharp mask's "
                                                            "Gaussian radius (pixels).")
    blur_prob: float = opt(1.0, doc="First stage: chance of the first blur (`kernel1`); Real-ESRGAN always "
                                    "blurs (1).", min=0.0, max=1.0)
    resize_prob: Tuple[float, float, float] = opt((0.2, 0.7, 0.1), doc="First stage: chances of resizing up, "
                                                                       "down, or keeping the size.")
    resize_range: Tuple[float, float] = opt((0.15, 1.5), doc="First stage: resize factor range (down from the low "
                                                             "end to 1, up from 1 to the high end).")
    resize_mode_list: ResizeModes = opt(
        RESIZE_MODES, doc="First stage: the resize modes drawn from (`area`, `bilinear`, "
                                             "`bicubic`, `nearest-exact`, `lanczos`: Lanczos-3, antialiased when "
                                             "shrinking).")
    resize_mode_prob: Tuple[float, ...] = opt((1.0, 1.0, 1.0), doc="First stage: the weight of each mode of "
                                                                   "`resize_mode_list` (normalised).")
    gaussian_noise_prob: float = opt(0.5, doc="First stage: chance of Gaussian noise (else Poisson noise).",
                                     min=0.0, max=1.0)
    noise_range: Tuple[float, float] = opt((1.0, 30.0), doc="First stage: Gaussian noise sigma range, in 8-bit "
                                                            "levels.")
    poisson_scale_range: Tuple[float, float] = opt((0.05, 3.0), doc="First stage: Poisson noise scale range.")
    gray_noise_prob: float = opt(0.4, doc="First stage: chance that the noise is gray (the same in every "
                                          "channel).", min=0.0, max=1.0)
    jpeg_range: Tuple[float, float] = opt((30.0, 95.0), doc="First stage: JPEG quality range (one quality per "
                                                            "image).")
    jpeg_prob: float = opt(1.0, doc="First stage: chance of the JPEG compression; Real-ESRGAN always compresses "
                                    "(1).", min=0.0, max=1.0)
    second_blur_prob: float = opt(0.8, doc="Second stage: chance of the second blur (`kernel2`).", min=0.0,
                                  max=1.0)
    resize_prob2: Tuple[float, float, float] = opt((0.3, 0.4, 0.3), doc="Second stage: as `resize_prob`.")
    resize_range2: Tuple[float, float] = opt((0.3, 1.2), doc="Second stage: as `resize_range` (relative to the "
                                                             "LR size).")
    resize_mode_list2: ResizeModes = opt(RESIZE_MODES, doc="Second stage: as `resize_mode_list`.")
    resize_mode_prob2: Tuple[float, ...] = opt((1.0, 1.0, 1.0), doc="Second stage: as `resize_mode_prob`.")
    gaussian_noise_prob2: float = opt(0.5, doc="Second stage: as `gaussian_noise_prob`.", min=0.0, max=1.0)
    noise_range2: Tuple[float, float] = opt((1.0, 25.0), doc="Second stage: as `noise_range`.")
    poisson_scale_range2: Tuple[float, float] = opt((0.05, 2.5), doc="Second stage: as `poisson_scale_range`.")
    gray_noise_prob2: float = opt(0.4, doc="Second stage: as `gray_noise_prob`.", min=0.0, max=1.0)
    jpeg_range2: Tuple[float, float] = opt((30.0, 95.0), doc="Second stage: as `jpeg_range` (the last JPEG).")
    jpeg_prob2: float = opt(1.0, doc="Second stage: as `jpeg_prob` (the last JPEG).", min=0.0, max=1.0)
    resize_mode_list3: ResizeModes = opt(RESIZE_MODES, doc="The final resize to the LR size: as `resize_mode_list`.")
    resize_mode_prob3: Tuple[float, ...] = opt((1.0, 1.0, 1.0), doc="The final resize: as `resize_mode_prob`.")


# The Real-ESRGAN keys of DegradationOptions (its files write them at the top level).
DEGRADATION_KEYS = tuple(f.name for f in dataclasses.fields(DegradationOptions))


@dataclass(frozen=True, kw_only=True)
class Options:
    """The whole validated configuration; read-only."""

    name: str = opt(doc="Experiment name: names `experiments/<name>/` and `weights/<name>_*`. Letters, digits, "
                        "`_`, `-`, `.`.")
    scale: int = opt(doc="Super-resolution factor (1 for restoration without resizing).", min=1, max=8)
    model_type: str = opt("SRModel", doc="Training logic (registered model): SRModel, or SRGANModel / "
                                         "ESRGANModel (GAN fine-tuning: `network_d`, `train.optim_d`, "
                                         "`train.gan_opt`), or RealESRNetModel / RealESRGANModel (LR inputs "
                                         "synthesised from GT images: RealESRGANDataset, `degradation`).")
    manual_seed: int = opt(0, doc="Seed of everything random: weights, data order, crops and flips.", min=0)
    device: Literal["auto", "cpu", "cuda"] = opt("auto", doc="`auto` = CUDA when available, else CPU.")
    num_threads: Union[int, Literal["auto"], None] = opt(
        "auto", doc="Torch CPU threads. `auto` (or none): on CPU one per core (shared among torchrun's "
                    "processes), data-loader workers or not (measured faster on idle cores, see Notes on speed; "
                    "on cores other jobs use too, fewer can be faster); on CUDA torch's default.", min=1)
    fast_matmul: bool = opt(False, doc="traiNNer-redux's key: on CUDA, float32 matrix products and convolutions "
                                       "may use TF32 (`torch.set_float32_matmul_precision('high')`, cuDNN TF32): "
                                       "faster on Ampere and newer, about 10 mantissa bits. No effect on the CPU.")
    malloc_tuning: bool = opt(True, doc="On Linux with glibc, train.py sets malloc's thresholds at start-up "
                                        "(mmap 32 MiB, trim 2 GiB, as `GLIBC_TUNABLES` would): freed memory is "
                                        "kept for the next step instead of being returned to the system and "
                                        "faulted in again; 10-17% faster CPU training, at the price of a process "
                                        "that stays at its peak memory. Logged; no effect elsewhere or when "
                                        "`GLIBC_TUNABLES` sets them; false = glibc's defaults.")
    datasets: Mapping[str, DatasetOptions] = opt(MappingProxyType({}), doc="`train` plus any number of "
                                                 "validation sets (`val`, `val_2`, ... or `test_*` for test.py). "
                                                 "Each: `type` and its keys (below).")
    network_g: Component = opt(doc="The network: `type` (MSRResNet, EDSR, RRDBNet, SRVGGNetCompact, a spandrel "
                                   "network such as SPAN, DAT or HAT, your registered class, a preset such as "
                                   "`span` or `dat_2`, or `auto`: the network of `path.pretrain_path`) plus its "
                                   "constructor arguments; see Networks.", registry=ARCH_REGISTRY,
                               hint="e.g. {type: MSRResNet, num_feat: 64, num_block: 16, upscale: 4}")
    degradation: Optional[DegradationOptions] = opt(None, doc="RealESRNetModel / RealESRGANModel: the synthetic "
                                                              "degradation; see `degradation.*`.")
    network_d: Optional[Component] = opt(None, doc="GAN models: the discriminator, `type` "
                                                   "(VGGStyleDiscriminator, UNetDiscriminatorSN, dunet) plus its "
                                                   "arguments.", registry=ARCH_REGISTRY,
                                         hint="e.g. {type: UNetDiscriminatorSN, num_feat: 64}")
    path: PathOptions = opt(PathOptions(), doc="Paths: see `path.*`.")
    train: Optional[TrainOptions] = opt(None, doc="Training: see `train.*`; required by train.py.")
    val: Optional[ValOptions] = opt(None, doc="Validation: see `val.*`; none = no validation.")
    logger: LoggerOptions = opt(LoggerOptions(), doc="Logging and checkpoints: see `logger.*`.")

    # Not options: where this configuration came from, for messages and for saving it beside the results.
    source_file: str = dataclasses.field(default="", compare=False, metadata={"internal": True})
    origin: Optional["OptionsOrigin"] = dataclasses.field(default=None, compare=False, metadata={"internal": True})

    def error(self, problems: Sequence[Problem]) -> UserError:
        """Problems found after loading (files, data, the built model), with file and line like key errors."""
        if self.origin is None:
            return UserError(format_problems(problems, None))
        return UserError(format_problems(problems, self.origin.source, self.origin.overridden))

    @property
    def train_set(self) -> Optional[DatasetOptions]:
        return self.datasets.get("train")

    @property
    def val_sets(self) -> List[DatasetOptions]:
        return [d for k, d in self.datasets.items() if k != "train"]

    def to_dict(self) -> Dict[str, Any]:
        """The effective configuration as plain Python types (safe to store in a checkpoint)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("internal"):
                continue
            value = getattr(self, f.name)
            if f.name == "datasets":
                value = {k: dataset_to_plain(d) for k, d in value.items()}
            elif f.name == "val" and value is not None:
                value = {**plain(value), "metrics": {k: c.to_plain() for k, c in value.metrics.items()}}
            out[f.name] = plain(value)
        return out


@dataclass(frozen=True)
class OptionsOrigin:
    """The parsed file (line numbers) and the ``--set`` overrides an :class:`Options` came from."""

    source: YamlSource
    overridden: Mapping[Path_, str]


def dataset_to_plain(d: DatasetOptions) -> Dict[str, Any]:
    loader = {k: plain(getattr(d, k)) for k in LOADER_KEYS}
    return {**(d.dataset.to_plain() if d.dataset else {}), **loader}


# ----------------------------------------------------------------------------------------------------------------
# Loading


def parse_set(arg: str) -> Tuple[Tuple[str, ...], Any]:
    """``train.optim_g.lr=1e-4`` -> (('train', 'optim_g', 'lr'), 1e-4); the value is parsed as YAML."""
    if "=" not in arg:
        raise UserError(f"--set {arg}: expected key.path=value, e.g. --set train.total_iter=1000")
    key, _, text = arg.partition("=")
    parts = tuple(p for p in key.strip().split("."))
    if not key.strip() or any(not p for p in parts):
        raise UserError(f"--set {arg}: the key path '{key}' is empty or has an empty part")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise UserError(f"--set {arg}: the value is not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    return parts, value


def apply_overrides(raw: Dict[str, Any], overrides: Sequence[str]) -> Dict[Path_, str]:
    """Apply ``--set`` overrides in place; returns which key paths came from the command line."""
    origins: Dict[Path_, str] = {}
    for arg in overrides:
        parts, value = parse_set(arg)
        node = raw
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise UserError(f"--set {arg}: {'.'.join(parts[:i + 1])} is not a mapping, cannot set "
                                f"{'.'.join(parts)}")
            node = nxt
        node[parts[-1]] = value
        origins[parts] = arg
    return origins


def read_source(path: str) -> YamlSource:
    if not os.path.exists(path):
        raise UserError(f"{path}: options file not found")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder, expected a YAML options file")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read options file ({exc})") from exc
    return YamlSource(text, path)


# Checks of what valid sections point at (folders, images, weight files), run beside the key errors of the
# other sections: (options, problems, whether the keys under a path are valid) -> more problems.
FileChecks = Callable[[Options, List[Problem], Callable[[Path_], bool]], None]


def load_options(path: str, overrides: Sequence[str] = (), *, require_train: bool = True,
                 file_checks: Optional[FileChecks] = None) -> Options:
    """Read, override and validate the keys; raises :class:`UserError` listing every problem, one per line.

    Pure: it reads the one file and touches nothing else. What the options point at (folders, images,
    checkpoints, the device) is checked when the run is built (:func:`framework.checks.check_and_build`);
    when keys are wrong, ``file_checks`` (reading only) still checks the sections whose keys are right, so
    one round reports both.
    """
    source = read_source(path)
    raw = source.data if source.data is not None else {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of option keys at the top level, got {type(raw).__name__}")
    origins = apply_overrides(raw, overrides)
    problems: List[Problem] = list(source.duplicates)
    options = validate(raw, problems, require_train=require_train)
    if options is None or problems:
        if options is not None and file_checks is not None:
            wrong = [p.path for p in problems]
            file_checks(options, problems, lambda key: not any(w[:len(key)] == key or key[:len(w)] == w for w in wrong))
        raise UserError(format_problems(problems, source, origins))
    return dataclasses.replace(options, source_file=path, origin=OptionsOrigin(source, MappingProxyType(origins)))


def validate(raw: Dict[str, Any], problems: List[Problem], *, require_train: bool = True) -> Optional[Options]:
    """The key-level checks: names, types, bounds, registered types and their arguments."""
    with reading(raw):
        return _validate(dict(raw), problems, require_train=require_train)


def _validate(raw: Dict[str, Any], problems: List[Problem], *, require_train: bool) -> Optional[Options]:
    inferred = inferred_model_type(raw)
    if inferred is not None:  # a traiNNer-redux file: said once, then checked as the model it means
        fix = model_type_fix(inferred)
        problems.append(Problem(("model_type",), fix.message, fix))
        raw["model_type"] = inferred
    datasets_raw = raw.pop("datasets", None)
    metrics_raw = None
    val_raw = raw.get("val")
    if isinstance(val_raw, dict) and "metrics" in val_raw:
        val_raw = dict(val_raw)
        metrics_raw = val_raw.pop("metrics")
        raw["val"] = val_raw
    train_raw = raw.get("train")
    losses_raw = None
    if isinstance(train_raw, dict) and "losses" in train_raw:
        losses_raw = train_raw["losses"]
        raw["train"] = {k: v for k, v in train_raw.items() if k != "losses"}
    network_raw = raw.get("network_g")
    if isinstance(network_raw, dict) and network_raw.get("type") == "auto":
        from .published import auto_network

        raw["network_g"] = auto_network(network_raw, raw, problems)
    options = build_section(Options, raw, (), problems)
    if options is None:
        return None
    if options.train is not None and losses_raw is not None:
        options = dataclasses.replace(options, train=dataclasses.replace(
            options.train, losses=_build_losses(losses_raw, problems)))
    datasets = _build_datasets(datasets_raw, problems, require_train=require_train)
    replace: Dict[str, Any] = {"datasets": MappingProxyType(datasets)}
    if options.val is not None:
        metrics, higher = _build_metrics(metrics_raw, problems)
        replace["val"] = dataclasses.replace(options.val, metrics=MappingProxyType(metrics),
                                             higher_is_better=MappingProxyType(higher))
    if require_train and options.train is None:
        problems.append(Problem(("train",), "missing required section for training (total_iter, optim_g, "
                                            "pixel_opt)"))
    suffix = options.val.suffix if options.val is not None else None
    if isinstance(suffix, str) and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", suffix):
        problems.append(Problem(("val", "suffix"), f"'{suffix}' is not safe in a file name; use letters, digits, "
                                                   "'_', '-' and '.'"))
    wandb = options.logger.wandb
    if wandb is not None and wandb.project and importlib.util.find_spec("wandb") is None:
        problems.append(Problem(("logger", "wandb", "project"), "Weights & Biases needs the wandb package, which is "
                                                                "not installed: pip install wandb (or pip install "
                                                                "-e '.[wandb]'), or remove logger.wandb"))
    if options.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", options.name):
        problems.append(Problem(("name",), f"'{options.name}' is not a safe file name; use letters, digits, "
                                           "'_', '-' and '.' (it names folders and files)"))
    if options.model_type and options.model_type not in MODEL_REGISTRY:
        problem = not_registered(("model_type",), MODEL_REGISTRY, options.model_type)
        problems.append(problem)
        if problem.fix is not None and problem.fix.action == "rename":  # neosr's name: checked as the one meant
            options = dataclasses.replace(options, model_type=problem.fix.new_value)
    if options.model_type in MODEL_REGISTRY:
        _check_model_keys(options, MODEL_REGISTRY.get(options.model_type), problems)
        _check_synthesis(options, MODEL_REGISTRY.get(options.model_type), datasets.get("train"), problems)
    options = dataclasses.replace(options, **replace)
    if options.train is not None:
        _check_loss_roles(options.train, problems)
        _check_metric_schedules(options, problems)
        if options.model_type in MODEL_REGISTRY:
            _check_losses(options, MODEL_REGISTRY.get(options.model_type), problems)
    if options.network_g is not None and not any(p.path[:1] in (("scale",), ("network_g",)) for p in problems):
        options = dataclasses.replace(options, network_g=_check_network(options, datasets.get("train"), problems))
    return options


def _check_network(options: Options, train_set: Optional[DatasetOptions], problems: List[Problem]) -> Component:
    """network_g against the top-level scale (a spandrel network's or a preset's scale argument follows it
    when not given) and against the training patch size its windows must tile."""
    from .network_spec import check_patch_size, resolve_scale

    network = resolve_scale(options.network_g, options.scale, "network_g", problems)
    if options.train is not None and train_set is not None and train_set.dataset is not None:
        check_patch_size(network, options.scale, train_set.dataset.kwargs.get("gt_size"),
                         ("datasets", "train", "gt_size"), problems)
        if options.degradation is not None:
            check_patch_size(network, options.scale, options.degradation.gt_size, ("degradation", "gt_size"),
                             problems)
    return network


def _dotted(options: Options, key: str) -> Any:
    value: Any = options
    for part in key.split("."):
        value = getattr(value, part, None) if value is not None else None
    return value


def _check_model_keys(options: Options, model: Any, problems: List[Problem]) -> None:
    """The keys a model type needs to train (``required_options``: dotted keys, ``a|b`` for either) and the
    ones it would ignore (``unused_options``), so a GAN key in an SRModel file is not silently ignored."""
    for entry in getattr(model, "required_options", ()) if options.train is not None else ():
        key, *others = entry.split("|")  # "a|b": a, b or both
        if all(_dotted(options, k) is None for k in (key, *others)):
            meta = _field_meta(key)
            hint = f" ({meta['hint']})" if meta.get("hint") else ""
            alternatives = "".join(f" or {k}" for k in others)
            problems.append(Problem(tuple(key.split(".")), f"missing required key for {options.model_type}"
                                                           f"{alternatives}{hint}"))
    for key in getattr(model, "unused_options", ()):
        if _dotted(options, key) is not None:
            problems.append(Problem(tuple(key.split(".")), f"{options.model_type} does not use it; remove it, or "
                                                           "set model_type: ESRGANModel or SRGANModel to train a GAN"))


SYNTHESIS_MODELS = "RealESRNetModel or RealESRGANModel"


def _check_synthesis(options: Options, model: Any, train_set: Optional[DatasetOptions],
                     problems: List[Problem]) -> None:
    """A model that synthesises its LR inputs (``synthesizes_inputs``) and a dataset of GT images only
    (``gt_only``) go together; the ``degradation`` section belongs to such a model."""
    synthesizes = bool(getattr(model, "synthesizes_inputs", False))
    if not synthesizes and options.degradation is not None:
        problems.append(Problem(("degradation",), f"{options.model_type} does not use it (it trains on the "
                                                  f"dataset's LR images); remove it, or set model_type: "
                                                  f"{SYNTHESIS_MODELS}"))
    dataset = train_set.dataset if train_set is not None else None
    if options.train is None or dataset is None or dataset.type not in DATASET_REGISTRY:
        return
    gt_only = bool(getattr(DATASET_REGISTRY.get(dataset.type), "gt_only", False))
    paired = not (options.degradation or DegradationOptions()).high_order_degradation
    if gt_only and not synthesizes:
        problems.append(Problem(("datasets", "train", "type"), f"{dataset.type} gives GT images only, for a model "
                                                               f"that synthesises the LR inputs: set model_type: "
                                                               f"{SYNTHESIS_MODELS}"))
    elif synthesizes and gt_only and paired:
        problems.append(Problem(("datasets", "train", "type"), f"{dataset.type} gives GT images only, and "
                                                               "degradation.high_order_degradation: false trains on "
                                                               "stored LR images: use RealESRGANPairedDataset "
                                                               "(dataroot_gt, dataroot_lq), or set it to true"))
    elif synthesizes and not gt_only and not paired:
        problems.append(Problem(("datasets", "train", "type"), f"{options.model_type} synthesises its LR inputs "
                                                               f"from GT images and kernels: use RealESRGANDataset "
                                                               f"(not {dataset.type}), or set "
                                                               "degradation.high_order_degradation: false to train "
                                                               f"on {dataset.type}'s LR images as they are"))


def _check_metric_schedules(options: Options, problems: List[Problem]) -> None:
    """A schedule that reacts to a validation metric (``monitor``) needs validation with that metric."""
    assert options.train is not None
    metrics = list(options.val.metrics) if options.val is not None else []
    for key in ("scheduler", "scheduler_d"):
        component = getattr(options.train, key)
        if component is None or component.type not in SCHEDULER_REGISTRY or \
                not hasattr(SCHEDULER_REGISTRY.get(component.type), "report"):
            continue
        monitor = component.kwargs.get("monitor")
        if not metrics:
            problems.append(Problem(("train", key, "type"), f"{component.type} reacts to a validation metric: "
                                                            "add val.metrics (and a validation set)"))
        elif monitor is not None and monitor not in metrics:
            problems.append(Problem(("train", key, "monitor"), f"'{monitor}' is not one of val.metrics"
                                                               f"{did_you_mean(str(monitor), metrics)} (known: "
                                                               f"{', '.join(metrics)})"))


# Which kind of loss each loss key takes (a loss class's ``loss_role``; losses without one are pixel losses).
LOSS_ROLES = {"pixel_opt": "pixel", "perceptual_opt": "perceptual", "gan_opt": "adversarial"}


def _check_loss_roles(train: TrainOptions, problems: List[Problem]) -> None:
    """A perceptual or GAN loss under ``pixel_opt`` (and the like) would be called with the wrong inputs."""
    for key, role in LOSS_ROLES.items():
        component = getattr(train, key)
        if component is None:
            continue
        own = getattr(LOSS_REGISTRY.get(component.type), "loss_role", "pixel")
        if own != role:
            takes = next((k for k, r in LOSS_ROLES.items() if r == own), None)
            move = f" (it belongs under train.{takes})" if takes else " (list it in train.losses)"
            problems.append(Problem(("train", key, "type"), f"{component.type} is not a {role} loss but "
                                                            f"{own}; {key} takes a {role} loss{move}"))


def _build_losses(raw: Any, problems: List[Problem]) -> Tuple[Component, ...]:
    """``train.losses``: each entry a loss component, its type matched ignoring case; an entry naming a
    traiNNer-redux loss that is not provided here is dropped at ``loss_weight: 0`` and an error otherwise."""
    path: Path_ = ("train", "losses")
    if not isinstance(raw, list):
        problems.append(Problem(path, f"expected a list of losses, each {{type: <name>, loss_weight: <w>}}, got "
                                      f"{raw!r}"))
        return ()
    out = []
    for index, item in enumerate(raw):
        where = path + (index,)
        name = item.get("type") if isinstance(item, dict) else None
        if isinstance(name, str) and LOSS_REGISTRY.canonical(name) is None and name.lower() in NOT_PROVIDED:
            weight = coerce(item.get("loss_weight", 1.0), float, where + ("loss_weight",), problems)
            if weight != 0:
                provided = ", ".join(sorted({n.lower() for n in LOSS_REGISTRY.names()}))
                problems.append(Problem(where + ("type",), f"'{name}' is a traiNNer-redux loss this trainer does "
                                                           f"not provide ({NOT_PROVIDED[name.lower()]}); set its "
                                                           f"loss_weight to 0 or remove it (provided: {provided})"))
            else:  # kept (never built), so the entries after it keep their index for messages
                out.append(Component(type=name, kwargs=freeze({k: v for k, v in item.items() if k != "type"})))
            continue
        if isinstance(name, str) and LOSS_REGISTRY.canonical(name) is not None:
            item = {**item, "type": LOSS_REGISTRY.canonical(name)}
        component = build_component(item, LOSS_REGISTRY, (), where, problems)
        if component is not None:
            out.append(component)
    return tuple(out)


def _check_losses(options: Options, model: Any, problems: List[Problem]) -> None:
    """What the model makes of its losses: one GAN loss in a GAN model (``adversarial``) and none elsewhere,
    an EMA for LDL, and at least one loss with a nonzero weight."""
    train = options.train
    assert train is not None
    entries = all_entries(train.pixel_opt, train.perceptual_opt, train.gan_opt, train.losses or ())
    active = [entry for entry in entries if entry.weight != 0]
    adversarial = [entry for entry in active if entry.role == "adversarial"]
    at = options.model_type
    if getattr(model, "adversarial", False):
        disabled = [entry for entry in entries if entry.role == "adversarial" and entry.weight == 0]
        if not adversarial and disabled:
            problems.append(Problem(("train", *disabled[0].key, "loss_weight"), f"{at} trains against its GAN loss: "
                                                                                "give it a nonzero loss_weight (e.g. "
                                                                                "0.1), or use SRModel"))
        elif not adversarial:
            problems.append(Problem(("train", "gan_opt"), f"missing required key for {at} (or a ganloss entry in "
                                                          "train.losses) (e.g. {type: GANLoss, gan_type: vanilla, "
                                                          "loss_weight: 5.0e-3})"))
        for extra in adversarial[1:]:
            problems.append(Problem(("train", *extra.key, "type"), f"a second GAN loss; {at} takes one (in "
                                                                   "train.gan_opt or one ganloss entry)"))
    else:
        for entry in adversarial:
            if entry.key[0] == "losses":  # gan_opt has its own message (unused_options)
                problems.append(Problem(("train", *entry.key, "type"), f"{at} does not use a GAN loss; remove it, "
                                                                       "or set model_type: ESRGANModel or "
                                                                       "SRGANModel to train a GAN"))
        if entries and not active:
            problems.append(Problem(("train", "losses"), f"every loss has loss_weight 0; {at} needs at least one"))
    for entry in active:
        if entry.role == "artifact" and train.ema_decay == 0:
            problems.append(Problem(("train", *entry.key, "type"), f"{entry.component.type} compares with the EMA "
                                                                   "generator's output: set train.ema_decay (e.g. "
                                                                   "0.999)"))


def _field_meta(key: str) -> Mapping[str, Any]:
    cls: Any = Options
    meta: Mapping[str, Any] = {}
    for part in key.split("."):
        field = {f.name: f for f in dataclasses.fields(cls)}[part]
        meta = field.metadata
        cls = typing.get_type_hints(cls)[part]
        cls = next((a for a in typing.get_args(cls) if dataclasses.is_dataclass(a)), cls)
    return meta


def _build_datasets(raw: Any, problems: List[Problem], *, require_train: bool) -> Dict[str, DatasetOptions]:
    path: Path_ = ("datasets",)
    if raw is None:
        if require_train:
            problems.append(Problem(path, "missing required section (datasets.train, and datasets.val for "
                                          "validation)"))
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem(path, f"expected a mapping of dataset names, got {raw!r}"))
        return {}
    out: Dict[str, DatasetOptions] = {}
    for phase, block in raw.items():
        if not re.fullmatch(r"train|(val|test)(_[A-Za-z0-9]+)*", str(phase)):
            problems.append(Problem(path + (phase,), f"dataset key '{phase}' must be 'train', 'val', 'val_<x>' "
                                                     "or 'test_<x>'"))
            continue
        if not isinstance(block, dict):
            problems.append(Problem(path + (phase,), f"expected a mapping with 'type', got {block!r}"))
            continue
        loader_raw = {k: v for k, v in block.items() if k in LOADER_KEYS}
        dataset_raw = {k: v for k, v in block.items() if k not in LOADER_KEYS and k != "io_backend"}
        if _check_io_backend(block, path + (phase, "io_backend"), problems):
            dataset_raw["io_backend"] = block["io_backend"]
        loader = build_section(DatasetOptions, loader_raw, path + (phase,), problems)
        component = build_component(dataset_raw, DATASET_REGISTRY, DATASET_INJECTED, path + (phase,), problems,
                                    also=LOADER_KEYS)
        if loader is not None:
            out[str(phase)] = dataclasses.replace(loader, name=loader.name or str(phase), dataset=component)
    if require_train and "train" not in out and not any(p.path[:2] == path + ("train",) for p in problems):
        problems.append(Problem(path + ("train",), "missing required dataset for training"))
    return out


def _check_io_backend(block: Dict[str, Any], path: Path_, problems: List[Problem]) -> bool:
    """BasicSR's ``io_backend: {type: disk}`` (the default) or ``{type: lmdb}``; whether the dataset gets it
    (one that reads folders only, without an ``io_backend`` argument, takes ``disk`` as its default)."""
    value = block.get("io_backend")
    if value is None:
        return False
    from .data.backends import IO_BACKENDS

    supported = ", ".join(f"{{type: {kind}}}" for kind in IO_BACKENDS)
    kind = value.get("type") if isinstance(value, dict) else None
    if not (isinstance(value, dict) and kind in IO_BACKENDS and set(value) == {"type"}):
        shown = f"type '{kind}'" if isinstance(value, dict) and "type" in value and set(value) == {"type"} \
            else repr(value)
        problems.append(Problem(path, f"{shown} is not supported; supported: {supported}"
                                      f"{did_you_mean(str(kind), IO_BACKENDS) if kind else ''}"))
        return False
    name = block.get("type")
    target = DATASET_REGISTRY.get(name) if isinstance(name, str) and name in DATASET_REGISTRY else None
    if target is None:
        return False  # the unknown type is reported on its own
    if "io_backend" in signature_params(target)[0]:
        return True
    if kind != "disk":
        problems.append(Problem(path, f"{name} reads folders only (it has no io_backend argument); use "
                                      "{type: disk} or a dataset type that reads LMDB"))
    return False


def _build_metrics(raw: Any, problems: List[Problem]) -> Tuple[Dict[str, Component], Dict[str, bool]]:
    """The metric components, and per metric whether higher is better (``better:`` or the metric's own)."""
    path: Path_ = ("val", "metrics")
    if raw is None:
        return {}, {}
    if not isinstance(raw, dict):
        problems.append(Problem(path, f"expected a mapping of metric names, got {raw!r}"))
        return {}, {}
    meta = {f.name: f.metadata for f in dataclasses.fields(ValOptions)}["metrics"]
    out: Dict[str, Component] = {}
    higher: Dict[str, bool] = {}
    for name, block in raw.items():
        better = None
        if isinstance(block, dict) and "better" in block:
            block = dict(block)
            better = coerce(block.pop("better"), Literal["higher", "lower"], path + (name, "better"), problems)
        component = build_value(block, Component, meta, path + (name,), problems)
        if component is not None:
            out[str(name)] = dataclasses.replace(component, better=better)
            own = getattr(METRIC_REGISTRY.get(component.type), "better", "higher")
            higher[str(name)] = (better or own) == "higher"
    return out, higher


def save_options(options: Options, path: str) -> None:
    """Write the effective options (defaults filled in) as YAML, for the experiment folder."""
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(options.to_dict(), fh, sort_keys=False)


# ----------------------------------------------------------------------------------------------------------------
# Comparing two configurations (resume log, scripts/checkpoint.py diff)

ABSENT = object()  # a key only one side has


def flatten(value: Any, prefix: str = "") -> Dict[str, Any]:
    """``{'a': {'b': 1}}`` -> ``{'a.b': 1}``; lists are values; an empty dict stays a value."""
    if not isinstance(value, dict) or not value:
        return {prefix: value}
    out: Dict[str, Any] = {}
    for key, item in value.items():
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def option_changes(old: Dict[str, Any], new: Dict[str, Any]) -> List[Tuple[str, Any, Any]]:
    """``[(dotted key, old value, new value)]`` for every leaf that differs (ABSENT where one side lacks it)."""
    flat_old, flat_new = flatten(old), flatten(new)
    changes = []
    for key in sorted(set(flat_old) | set(flat_new)):
        a, b = flat_old.get(key, ABSENT), flat_new.get(key, ABSENT)
        if a is ABSENT or b is ABSENT or a != b:
            changes.append((key, a, b))
    return changes


def format_change(key: str, old: Any, new: Any) -> str:
    def show(value: Any) -> str:
        return "(absent)" if value is ABSENT else repr(value)

    return f"{key}: {show(old)} -> {show(new)}"
