"""Options: one YAML file -> validated, typed, read-only :class:`Options`.

The dataclasses below are the schema: every key, its type, default, bounds and the text of docs/options.md. Keys follow
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
from typing import (Any, Callable, Dict, Iterator, List, Literal, Mapping, Optional, Sequence, Tuple, Type, TypeVar,
                    Union, overload)

import yaml

from .basicsr_names import inferred_model_type, model_type_fix, reading
from .errors import UserError, did_you_mean
from .loss_set import NOT_PROVIDED, role_of
from .option_rules import (ComponentSpec, MetricSpec, ModelRequirements, OptionsOwner, declared_sections,
                           keys_valid, requirements_of, spec_of)
from .registry import (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY,
                       OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY, Registry)
from .schema import (Component, Path_, Problem, YamlSource, build_component, build_section, build_value,
                     coerce, format_problems, freeze, not_registered, opt, plain, signature_params)
from .toml_source import toml_as_yaml

SectionT = TypeVar("SectionT")

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
                                             "one of the `losses` family) plus `loss_weight`, `reduction`; logged "
                                             "as `l_pix` (`l_g_pix` in GAN models). Which losses a model needs: "
                                             "see the model types above.",
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


@dataclass(frozen=True, kw_only=True)
class Options:
    """The whole validated configuration; read-only."""

    name: str = opt(doc="Experiment name: names `experiments/<name>/` and `weights/<name>_*`. Letters, digits, "
                        "`_`, `-`, `.`.")
    scale: int = opt(doc="Super-resolution factor (1 for restoration without resizing).", min=1, max=8)
    model_type: str = opt("SRModel", doc="Training logic: a registered model; the model types below say what "
                                         "each needs to train.")
    manual_seed: int = opt(0, doc="Seed of everything random: weights, data order, crops and flips.", min=0)
    device: Literal["auto", "cpu", "cuda"] = opt("auto", doc="`auto` = CUDA when available, else CPU.")
    num_threads: Union[int, Literal["auto"], None] = opt(
        "auto", doc="Torch CPU threads. `auto` (or none): on CPU one per core (shared among torchrun's "
                    "processes), data-loader workers or not (fastest on idle cores; on cores other jobs use "
                    "too, fewer can be faster: docs/distributed-and-precision.md); on CUDA torch's default.", min=1)
    fast_matmul: bool = opt(False, doc="traiNNer-redux's key: on CUDA, float32 matrix products and convolutions "
                                       "may use TF32 (`torch.set_float32_matmul_precision('high')`, cuDNN TF32): "
                                       "faster on Ampere and newer, about 10 mantissa bits. No effect on the CPU.")
    malloc_tuning: bool = opt(True, doc="On Linux with glibc, train.py sets malloc's thresholds at start-up "
                                        "(mmap 32 MiB, trim 2 GiB, as `GLIBC_TUNABLES` would): freed memory is "
                                        "kept for the next step instead of being returned to the system and "
                                        "faulted in again; faster CPU training (docs/benchmarks.md), at the "
                                        "price of a process that stays at its peak memory. Logged; no effect "
                                        "elsewhere or when `GLIBC_TUNABLES` sets them; false = glibc's defaults.")
    datasets: Mapping[str, DatasetOptions] = opt(MappingProxyType({}), doc="`train` plus any number of "
                                                 "validation sets (`val`, `val_2`, ... or `test_*` for test.py). "
                                                 "Each: `type` and its keys (below).")
    network_g: Component = opt(doc="The network: `type` (MSRResNet, EDSR, RRDBNet, SRVGGNetCompact, a spandrel "
                                   "network such as SPAN, DAT or HAT, your registered class, a preset such as "
                                   "`span` or `dat_2`, or `auto`: the network of `path.pretrain_path`) plus its "
                                   "constructor arguments; see Networks.", registry=ARCH_REGISTRY,
                               hint="e.g. {type: MSRResNet, num_feat: 64, num_block: 16, upscale: 4}")
    # The top-level sections the models own (option_rules.OptionSection), by key, for the model that declares
    # them (Real-ESRGAN's `degradation`); read them with `section`.
    sections: Mapping[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}),
                                                    metadata={"internal": True})
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

    def section(self, key: str, schema: Type[SectionT]) -> SectionT:
        """A model's own top-level section (``degradation``) as given, else its defaults."""
        value = self.sections.get(key)
        return value if isinstance(value, schema) else schema()

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
            value = getattr(self, f.name)
            if f.name == "sections":  # each known section at this place, none where not given
                out.update({key: plain(value.get(key)) for key in declared_sections()})
                continue
            if f.metadata.get("internal"):
                continue
            if f.name == "datasets":
                value = {k: dataset_to_plain(d) for k, d in value.items()}
            elif f.name == "val" and value is not None:
                value = {**plain(value), "metrics": {k: c.to_plain() for k, c in value.metrics.items()}}
            out[f.name] = plain(value)
        return out


@dataclass(frozen=True, kw_only=True)
class TrainingOptions(Options):
    """The options of a training run (train.py): the ``train`` section is there."""

    train: TrainOptions = opt(doc="Training: see `train.*`; required by train.py.")


def as_training(options: Options) -> Optional[TrainingOptions]:
    """``options`` as a training run's, or None without a ``train`` section."""
    if options.train is None:
        return None
    if isinstance(options, TrainingOptions):
        return options
    return TrainingOptions(**{f.name: getattr(options, f.name) for f in dataclasses.fields(options)})


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
    if path.lower().endswith(".toml"):  # neosr's format
        yaml_text, line_map = toml_as_yaml(text, path)
        return YamlSource(yaml_text, path, line_map)
    return YamlSource(text, path)


# Checks of what valid sections point at (folders, images, weight files), run beside the key errors of the
# other sections: (options, problems, whether the keys under a path are valid) -> more problems.
FileChecks = Callable[[Options, List[Problem], Callable[[Path_], bool]], None]


@overload
def load_options(path: str, overrides: Sequence[str] = (), *, require_train: Literal[True] = True,
                 file_checks: Optional[FileChecks] = None) -> TrainingOptions: ...


@overload
def load_options(path: str, overrides: Sequence[str] = (), *, require_train: bool,
                 file_checks: Optional[FileChecks] = None) -> Options: ...


def load_options(path: str, overrides: Sequence[str] = (), *, require_train: bool = True,
                 file_checks: Optional[FileChecks] = None) -> Options:
    """Read, override and validate the keys; raises :class:`UserError` listing every problem, one per line.
    Options with a ``train`` section (always with ``require_train``) come back as :class:`TrainingOptions`.

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
    """The key-level checks: names, types, bounds, registered types and their arguments, and the rules of the
    model and of each component the options name (:mod:`framework.option_rules`)."""
    with reading(raw):
        return _validate(dict(raw), problems, require_train=require_train)


def _validate(raw: Dict[str, Any], problems: List[Problem], *, require_train: bool) -> Optional[Options]:
    inferred = inferred_model_type(raw)
    if inferred is not None:  # a traiNNer-redux file: said once, then checked as the model it means
        fix = model_type_fix(inferred)
        problems.append(Problem(("model_type",), fix.message, fix))
        raw["model_type"] = inferred
    datasets_raw = raw.pop("datasets", None)
    sections_raw = {key: raw.pop(key) for key in declared_sections() if key in raw}
    sections_raw = {key: value for key, value in sections_raw.items() if value is not None}  # null: not given
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
    model = MODEL_REGISTRY.get(options.model_type) if options.model_type in MODEL_REGISTRY else None
    replace["sections"] = MappingProxyType(_build_sections(sections_raw, options.model_type, model, problems))
    options = dataclasses.replace(options, **replace)
    if model is not None:
        _check_model_keys(options, requirements_of(model), problems)
    if options.train is not None:
        _check_loss_roles(options.train, problems)
        _check_metric_schedules(options.train, options.val, problems)
    if options.network_g is not None and not any(p.path[:1] in (("scale",), ("network_g",)) for p in problems):
        options = dataclasses.replace(options, network_g=_check_network(options, datasets.get("train"), problems))
    training = as_training(options)
    if training is None:
        return options
    if model is not None:
        typing.cast(OptionsOwner, model).check_options(training, problems)
    _check_components(training, problems)
    return training


def _build_sections(raw: Dict[str, Any], model_type: str, model: Any, problems: List[Problem]) -> Dict[str, Any]:
    """The top-level sections models own (``degradation``), each built with its schema; one given to a model
    that does not declare it is a problem at its key."""
    declared = declared_sections()
    own = requirements_of(model).sections if model is not None else {}
    out: Dict[str, Any] = {}
    for key, value in raw.items():
        section, owners = declared[key]
        section = own.get(key, section)
        if model is not None and key not in own:
            problems.append(Problem((key,), f"{model_type} does not use it{section.unused_because}; remove it, or "
                                            f"set model_type: {' or '.join(owners)}"))
        built = build_section(section.schema, value, (key,), problems)
        if built is not None:
            out[key] = built
    return out


def _check_network(options: Options, train_set: Optional[DatasetOptions], problems: List[Problem]) -> Component:
    """network_g against the top-level scale (a spandrel network's or a preset's scale argument follows it
    when not given), the training patch size its windows must tile and the batch it needs."""
    from .network_spec import check_batch_size, check_patch_size, resolve_scale

    network = resolve_scale(options.network_g, options.scale, "network_g", problems)
    if options.train is not None and train_set is not None and train_set.dataset is not None:
        check_patch_size(network, options.scale, train_set.dataset.kwargs.get("gt_size"),
                         ("datasets", "train", "gt_size"), problems)
        check_batch_size(network, train_set.batch_size_per_gpu, ("datasets", "train", "batch_size_per_gpu"),
                         problems)
    return network


def _dotted(options: Options, key: str) -> Any:
    value: Any = options
    for part in key.split("."):
        value = getattr(value, part, None) if value is not None else None
    return value


def _check_model_keys(options: Options, requirements: ModelRequirements, problems: List[Problem]) -> None:
    """The keys a model type needs to train (an entry of several keys: one of them) and the ones it would
    ignore, so a GAN key in an SRModel file is not silently ignored."""
    for key, *others in requirements.required if options.train is not None else ():
        given_but_wrong = not keys_valid(problems, *(tuple(k.split(".")) for k in (key, *others)))
        if not given_but_wrong and all(_dotted(options, k) is None for k in (key, *others)):
            meta = _field_meta(key)
            hint = f" ({meta['hint']})" if meta.get("hint") else ""
            alternatives = "".join(f" or {k}" for k in others)
            problems.append(Problem(tuple(key.split(".")), f"missing required key for {options.model_type}"
                                                           f"{alternatives}{hint}"))
    for key in requirements.unused:
        if _dotted(options, key) is not None:
            fix = f", or {requirements.unused_fix}" if requirements.unused_fix else ""
            problems.append(Problem(tuple(key.split(".")), f"{options.model_type} does not use it; remove it{fix}"))


def _check_components(options: TrainingOptions, problems: List[Problem]) -> None:
    """Each named component's own rule (its ``option_spec.rule``), where its type is valid."""
    for path, component, registry in _components(options, ()):
        if component.type in registry and keys_valid(problems, path + ("type",)):
            rule = spec_of(registry.get(component.type), ComponentSpec).rule
            if rule is not None:
                rule(options, component, path, problems)


def _components(value: Any, path: Path_) -> Iterator[Tuple[Path_, Component, Registry]]:
    """Every ``{type: ...}`` component under a section (a dataclass), with its key path and registry."""
    for f in dataclasses.fields(value):
        if f.metadata.get("internal"):
            continue
        item, where = getattr(value, f.name), path + (f.name,)
        registry = f.metadata.get("registry")
        if registry is not None and f.name == "dataset" and isinstance(item, Component):
            yield path, item, registry  # a dataset's keys sit in its phase's block
        elif registry is not None and isinstance(item, Component):
            yield where, item, registry
        elif registry is not None and isinstance(item, (tuple, Mapping)):
            pairs = item.items() if isinstance(item, Mapping) else enumerate(item)
            yield from ((where + (key,), c, registry) for key, c in pairs if isinstance(c, Component))
        elif dataclasses.is_dataclass(item):
            yield from _components(item, where)
        elif isinstance(item, Mapping):
            for key, section in item.items():
                if dataclasses.is_dataclass(section):
                    yield from _components(section, where + (key,))


def _check_metric_schedules(train: TrainOptions, val: Optional[ValOptions], problems: List[Problem]) -> None:
    """A schedule that reacts to a validation metric (``monitor``) needs validation with that metric."""
    metrics = list(val.metrics) if val is not None else []
    for key in ("scheduler", "scheduler_d"):
        component = getattr(train, key)
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


# Which kind of loss each loss key takes (a loss class's LossSpec.role).
LOSS_ROLES = {"pixel_opt": "pixel", "perceptual_opt": "perceptual", "gan_opt": "adversarial"}


def _check_loss_roles(train: TrainOptions, problems: List[Problem]) -> None:
    """A perceptual or GAN loss under ``pixel_opt`` (and the like) would be called with the wrong inputs."""
    for key, role in LOSS_ROLES.items():
        component = getattr(train, key)
        if component is None:
            continue
        own = role_of(component.type)
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
            own = spec_of(METRIC_REGISTRY.get(component.type), MetricSpec).better
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
