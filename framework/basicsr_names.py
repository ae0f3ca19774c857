"""BasicSR, Real-ESRGAN, traiNNer-redux and neosr names: the one table of keys this trainer spells differently,
has no use for, or does not provide, and of their components (networks, models, losses, metrics ...) it spells
differently or does not provide.

Option messages and ``scripts/convert_options.py`` both read it, and the tables of docs/coming-from-basicsr.md
are generated from it, so a rename is written down once. It is
consulted only for what the schema and the registries do not know: a key or component that gains a meaning here
(a field, a registered class) stops being looked up, so this table never shadows what exists.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Dict, Iterable, Iterator, List, Literal, Mapping, Optional, Tuple, Union

Action = Literal["rename", "move", "remove", "absent", "add"]
BASICSR_ORIGINS = ("BasicSR", "Real-ESRGAN")
REDUX_ORIGINS = ("traiNNer-redux", "neosr")

# Real-ESRGAN writes its degradation keys at the top level; here they have a section of their own.
DEGRADATION_SECTION = "degradation"


@dataclass(frozen=True)
class KeyRule:
    """One BasicSR key: ``where`` is the dotted section (``""`` top level, ``datasets.*`` any dataset)."""

    where: str
    key: str
    action: Action
    why: str
    to: str = ""  # rename: our key (same section); move: the dotted key it belongs at (its name may change)
    # A value change: (their value, the whole file) -> ours; DEFAULT: the value is this trainer's default, the key
    # is removed; ValueError: that value has no meaning here (its message says why).
    values: Optional[Callable[[Any, Mapping[str, Any]], Any]] = None
    values_doc: str = ""  # the value mapping in words, for messages and the docs
    origin: str = "BasicSR"


@dataclass(frozen=True)
class Fix:
    """What to do about one key or component of a BasicSR file (attached to its :class:`Problem`).

    ``rename``: write ``new_key`` (and ``new_value`` when ``has_value``); ``move``: the key into the section
    ``new_key`` names (``degradation``, ``train``), as written, or as ``target`` (its name there) with
    ``new_value`` when ``has_value``; ``remove``: delete the key; ``add``: write ``new_key: new_value`` at the
    top level; ``absent``: a feature this trainer lacks, which only ``droppable`` ones (a metric: reporting
    only) may be commented out for."""

    action: Action
    key: str
    message: str
    why: str = ""
    new_key: str = ""
    new_value: Any = None
    has_value: bool = False
    droppable: bool = False
    target: str = ""  # move: the key's name in its new section


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


# Returned by a rule's ``values``: the value is this trainer's default, so the key is removed, not translated.
DEFAULT: Any = _Default()

# The whole file being checked, for the value changes that depend on another key (``lq_size`` x ``scale``).
_FILE: ContextVar[Mapping[str, Any]] = ContextVar("_FILE", default=MappingProxyType({}))


@contextmanager
def reading(raw: Mapping[str, Any]) -> Iterator[None]:
    """The file ``raw`` is the one the rules look up other keys in while it is checked."""
    token = _FILE.set(raw if isinstance(raw, Mapping) else MappingProxyType({}))
    try:
        yield
    finally:
        _FILE.reset(token)


def _num_gpu(value: Any, _file: Mapping[str, Any]) -> str:
    if value == "auto":
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return "cpu" if value == 0 else "cuda"
    raise ValueError(f"expected 0, a GPU count or auto, got {value!r}")



def _precision(value: Any, file: Mapping[str, Any]) -> Any:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    if not value:
        return DEFAULT
    bf16 = file.get("amp_bf16", file.get("bfloat16", (file.get("train") or {}).get("amp_bf16", False)))
    return "bf16" if bf16 is True else "fp16"


def _lq_size(value: Any, file: Mapping[str, Any]) -> int:
    scale = file.get("scale")
    if isinstance(value, bool) or not isinstance(value, int) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"gt_size = lq_size x scale needs whole numbers, got lq_size {value!r}, scale {scale!r}")
    return value * scale


def _grad_clip(value: Any, _file: Mapping[str, Any]) -> Any:
    if value is True:
        return 1.0
    if value is False or value is None:
        return DEFAULT
    raise ValueError(f"expected true or false, got {value!r}")


def _only(default: Any, what: str) -> Callable[[Any, Mapping[str, Any]], Any]:
    """A switch or amount whose ``default`` (off, 0) is this trainer's behaviour; any other value asks for
    ``what``, which is not provided."""
    def values(value: Any, _file: Mapping[str, Any]) -> Any:
        if value == default or value is None:
            return DEFAULT
        raise ValueError(f"{what} is not provided here (only {default!r} is)")
    return values


def _same(value: Any, _file: Mapping[str, Any]) -> Any:
    return value


def _pixel_unshuffle(value: Any, file: Mapping[str, Any]) -> Any:
    """traiNNer-redux's ESRGAN switch: RRDBNet here always pixel-unshuffles the input at scale 1 and 2 (as
    Real-ESRGAN's does); above 2 the switch has no effect."""
    scale = file.get("scale")
    if value is True or value is None or (isinstance(scale, int) and scale > 2):
        return DEFAULT
    raise ValueError("RRDBNet here always pixel-unshuffles the input at scale 1 and 2 (Real-ESRGAN's network); "
                     "false is not provided")


def _realplksr_upsampler(value: Any, _file: Mapping[str, Any]) -> Any:
    """traiNNer-redux's RealPLKSR ``upsampler`` is spandrel's ``dysample`` switch here (pixel shuffle when off)."""
    if value == "pixelshuffle":
        return DEFAULT
    if value == "dysample":
        return True
    raise ValueError(f"RealPLKSR here upsamples by pixelshuffle or dysample, not {value!r}")


_REDUX = "traiNNer-redux"
# RealESRGANDataset's blur keys, which neosr writes among the degradation settings
_KERNEL_KEYS = tuple(f"{key}{stage}" for stage in ("", "2") for key in (
    "blur_kernel_size", "kernel_list", "kernel_prob", "sinc_prob", "blur_sigma", "betag_range", "betap_range")) + (
    "final_sinc_prob",)
_MOA = "traiNNer-redux's mixture of augmentations (MoA: mixup, cutmix, resizemix, cutblur) is not provided"
_OTF_DEBUG = "scripts/show_degradations.py draws degraded samples of an option file"
_DEGRADATION_MOVES = ("lq_usm", "lq_usm_radius_range", "blur_prob", "resize_mode_list", "resize_mode_prob",
                      "jpeg_prob", "resize_mode_list2", "resize_mode_prob2", "jpeg_prob2", "resize_mode_list3",
                      "resize_mode_prob3")

# traiNNer-redux and neosr keys (their templates write the degradation keys and the precision switches at the
# top level, and accum_iter in the training set's block).
REDUX_RULES: Tuple[KeyRule, ...] = (
    KeyRule("", "use_amp", "move", "one key says the precision here, in the train section", to="train."
            "mixed_precision", values=_precision, values_doc="`true` → `fp16` (`bf16` with amp_bf16 / bfloat16: "
            "true), `false` → removed", origin=_REDUX),
    *(KeyRule(where, key, "remove", "folded into train.mixed_precision with use_amp", origin=origin)
      for where, key, origin in (("", "amp_bf16", _REDUX), ("", "bfloat16", "neosr"), ("train", "amp_bf16", _REDUX))),
    KeyRule("train", "use_amp", "rename", "one key says the precision here", to="mixed_precision",
            values=_precision, values_doc="`true` → `fp16` (`bf16` with amp_bf16: true), `false` → removed",
            origin=_REDUX),
    KeyRule("", "use_channels_last", "move", "channels-last memory format, a training option here",
            to="train.channels_last", values=_same, origin=_REDUX),
    KeyRule("train", "use_channels_last", "rename", "channels-last memory format", to="channels_last",
            origin=_REDUX),
    KeyRule("", "compile", "move", "torch.compile, a training option here", to="train.compile", values=_same,
            origin="neosr"),
    KeyRule("datasets.*", "accum_iter", "move", "micro-batches per optimizer step, a training option here",
            to="train.accumulate_steps", values=_same, origin=_REDUX),
    KeyRule("train", "accum_iter", "rename", "micro-batches per optimizer step", to="accumulate_steps",
            origin=_REDUX),
    KeyRule("datasets.*", "lq_size", "rename", "the crop is given at the GT size here, as in BasicSR",
            to="gt_size", values=_lq_size, values_doc="gt_size = lq_size x scale", origin=_REDUX),
    KeyRule("train", "grad_clip", "rename", "the clipping threshold of the gradient norm", to="grad_clip_norm",
            values=_grad_clip, values_doc="`true` → `1.0` (traiNNer-redux's threshold), `false` → removed",
            origin=_REDUX),
    KeyRule("train", "ema", "rename", "the EMA decay", to="ema_decay", origin="neosr"),
    *(KeyRule("network_g", key, "remove", "RRDBNet pixel-unshuffles the input at scale 1 and 2 (Real-ESRGAN's "
              "network); no effect above", values=_pixel_unshuffle, values_doc="at `true`, or any value above "
              "scale 2", origin=_REDUX) for key in ("use_pixel_unshuffle", "use_pixel_shuffle")),
    KeyRule("network_g", "upsampler", "rename", "RealPLKSR chooses its upsampler with the dysample switch",
            to="dysample", values=_realplksr_upsampler, values_doc="`pixelshuffle` → removed (the default), "
            "`dysample` → `true`", origin=_REDUX),
    KeyRule("train", "ema_power", "remove", "the EMA here has no warm-up: ema_decay from the first step",
            origin=_REDUX),
    KeyRule("train", "ema_update_after_step", "remove", "the EMA starts at the first step here",
            values=_only(0, "starting the EMA later"), values_doc="at `0`", origin=_REDUX),
    KeyRule("train", "ema_switch_iter", "remove", "the network is never replaced by its EMA here",
            values=_only(0, "switching the network to its EMA weights"), values_doc="at `0`", origin=_REDUX),
    KeyRule("train", "use_moa", "remove", _MOA, values=_only(False, "mixture of augmentations"),
            values_doc="at `false`", origin=_REDUX),
    *(KeyRule("train", key, "remove", f"a setting of use_moa; {_MOA}", origin=_REDUX)
      for key in ("moa_augs", "moa_probs", "moa_debug", "moa_debug_limit")),
    *(KeyRule("", key, "remove", _OTF_DEBUG, origin=_REDUX)
      for key in ("high_order_degradations_debug", "high_order_degradations_debug_limit")),
    *(KeyRule("", key, "move", "the synthetic degradation's settings have a section of their own",
              to=f"{DEGRADATION_SECTION}.{key}", origin=_REDUX) for key in _DEGRADATION_MOVES),
    KeyRule("", "blur_prob2", "move", "the chance of the second blur, Real-ESRGAN's name for it",
            to=f"{DEGRADATION_SECTION}.second_blur_prob", values=_same, origin=_REDUX),
    KeyRule("", "thicklines_prob", "remove", "traiNNer-redux's thick-lines degradation is not provided",
            values=_only(0, "the thick-lines degradation"), values_doc="at `0`", origin=_REDUX),
    # neosr's files (its TOML files are read as YAML, see framework/toml_source.py)
    KeyRule("", "degradations", "rename", "the synthetic degradation's settings", to=DEGRADATION_SECTION,
            origin="neosr"),
    *(KeyRule(DEGRADATION_SECTION, key, "move", "RealESRGANDataset draws the blur kernels; its section holds their "
              "settings, as in Real-ESRGAN", to=f"datasets.train.{key}", origin="neosr")
      for key in _KERNEL_KEYS),
    KeyRule("datasets.*", "patch_size", "rename", "the crop is given at the GT size here, as in BasicSR",
            to="gt_size", values=_lq_size, values_doc="gt_size = patch_size x scale", origin="neosr"),
    KeyRule("datasets.*", "batch_size", "rename", "BasicSR's name: the batch of one process", to="batch_size_per_gpu",
            origin="neosr"),
    KeyRule("datasets.*", "accumulate", "move", "micro-batches per optimizer step, a training option here",
            to="train.accumulate_steps", values=_same, origin="neosr"),
    KeyRule("datasets.*", "augmentation", "remove", "neosr's mixture of augmentations is not provided",
            values=_only(["none"], "mixture of augmentations"), values_doc="at `[none]`", origin="neosr"),
    KeyRule("datasets.*", "aug_prob", "remove", "a setting of augmentation, which is not provided", origin="neosr"),
    KeyRule("logger", "total_iter", "move", "the length of training, a training option here",
            to="train.total_iter", values=_same, origin="neosr"),
    KeyRule("val", "tile", "rename", "tiled validation's tile size", to="tile_size", origin="neosr"),
    KeyRule("val", "metrics_enabled", "remove", "metrics run when val.metrics lists some",
            values=_only(True, "validation without metrics (leave val.metrics empty instead)"),
            values_doc="at `true`", origin=_REDUX),
)

_RUNTIME = "BasicSR fills it in at run time; it has no meaning in a file"

KEY_RULES: Tuple[KeyRule, ...] = (
    KeyRule("", "num_gpu", "rename", "one process drives one device; for several GPUs start train.py with "
            "torchrun --nproc_per_node=N", to="device", values=_num_gpu,
            values_doc="0 → `cpu`, 1 or more → `cuda`, `auto` → `auto`"),
    KeyRule("", "dist_params", "remove", "torchrun sets up multi-process training, backend and port "
            "included; no option needed"),
    KeyRule("", "is_train", "remove", _RUNTIME),
    KeyRule("", "dist", "remove", _RUNTIME),
    KeyRule("", "rank", "remove", _RUNTIME),
    KeyRule("", "world_size", "remove", _RUNTIME),
    KeyRule("", "auto_resume", "remove", "use train.py --auto-resume or path.resume_path: auto"),
    KeyRule("path", "pretrain_network_g", "rename", "one network per file: no _g suffix", to="pretrain_path"),
    KeyRule("path", "pretrain_model_g", "rename", "older BasicSR spelling of pretrain_network_g",
            to="pretrain_path"),
    KeyRule("path", "param_key_g", "rename", "one network per file: no _g suffix", to="param_key",
            values=lambda value, _file: DEFAULT if value is None else value,
            values_doc="`~` → removed (the default, `params`, falls back to a file's only entry)"),
    KeyRule("path", "strict_load_g", "rename", "one network per file: no _g suffix", to="strict_load"),
    KeyRule("path", "resume_state", "rename", "a resume reads one verified .pt holding weights and training state",
            to="resume_path"),
    KeyRule("path", "models", "rename", "the folder of .pt checkpoints and .pth weights", to="weights_root"),
    KeyRule("path", "training_states", "remove", "the training state is inside each .pt in weights_root"),
    KeyRule("path", "log", "remove", "logs go to the experiment folder in experiments_root"),
    KeyRule("path", "visualization", "remove", "validation images go to visualization/ in the experiment folder"),
    KeyRule("datasets.*", "use_flip", "rename", "older BasicSR spelling of horizontal flips", to="use_hflip"),
    KeyRule("datasets.*", "use_shuffle", "remove", "the training set is always shuffled, by a resumable "
            "sampler, and validation sets never are"),
    KeyRule("datasets.*", "num_prefetch_queue", "remove", "the loader's workers prefetch here, 2 batches each"),
    KeyRule("val", "pbar", "remove", "validation has no progress-bar option here; its results are logged"),
    # --- GAN training: the discriminator's weights
    KeyRule("path", "pretrain_network_d", "rename", "the discriminator's starting weights", to="pretrain_path_d"),
    KeyRule("path", "param_key_d", "remove", "path.param_key applies to both networks (and a .pth with one "
            "entry is read whatever its key)"),
    KeyRule("path", "strict_load_d", "remove", "path.strict_load applies to both networks"),
    # --- Real-ESRGAN's degradation settings: one section of their own here
    *(KeyRule("", key, "move", "the synthetic degradation's settings have a section of their own",
              to=f"{DEGRADATION_SECTION}.{key}", origin="Real-ESRGAN") for key in (
        "gt_usm", "l1_gt_usm", "percep_gt_usm", "gan_gt_usm", "high_order_degradation", "queue_size", "gt_size",
        "resize_prob", "resize_range", "gaussian_noise_prob", "noise_range", "poisson_scale_range",
        "gray_noise_prob", "jpeg_range", "second_blur_prob", "resize_prob2", "resize_range2",
        "gaussian_noise_prob2", "noise_range2", "poisson_scale_range2", "gray_noise_prob2", "jpeg_range2")),
    KeyRule("datasets.*", "meta_info", "rename", "the list of images to use, BasicSR's name for it "
            "(RealESRGANPairedDataset keeps Real-ESRGAN's meta_info, its list of pairs)",
            to="meta_info_file", origin="Real-ESRGAN"),
    *REDUX_RULES,
)

# Registered names of BasicSR / Real-ESRGAN this trainer lacks: kind (as the registries name themselves) ->
# name -> (origin, what it is).
ABSENT_COMPONENTS: Dict[str, Dict[str, Tuple[str, str]]] = {
    "model": {
        "VideoBaseModel": ("BasicSR", "video restoration"), "EDVRModel": ("BasicSR", "video restoration"),
        "VideoRecurrentModel": ("BasicSR", "video restoration"),
        "VideoGANModel": ("BasicSR", "video restoration"), "VideoRecurrentGANModel": ("BasicSR", "video restoration"),
        "HiFaceGANModel": ("BasicSR", "face restoration"),
        "StyleGAN2Model": ("BasicSR", "face generation"),
    },
    "arch": {
        "ECBSR": ("BasicSR", "an edge-oriented SR network"), "RIDNet": ("BasicSR", "a denoising network"),
        "EDVR": ("BasicSR", "a video network"), "BasicVSR": ("BasicSR", "a video network"),
        "IconVSR": ("BasicSR", "a video network"), "BasicVSRPlusPlus": ("BasicSR", "a video network"),
        "DUF": ("BasicSR", "a video network"), "TOFlow": ("BasicSR", "a video network"),
        "DFDNet": ("BasicSR", "a face network"), "HiFaceGAN": ("BasicSR", "a face network"),
        "StyleGAN2Generator": ("BasicSR", "a face generator"),
        "metagan2": ("traiNNer-redux", "the MetaGAN2 discriminator; dunet and UNetDiscriminatorSN are provided"),
        "metagan": ("neosr", "the MetaGAN discriminator; dunet and UNetDiscriminatorSN are provided"),
    },
    "loss": {
        "MultiScaleGANLoss": ("BasicSR", "a multi-scale adversarial loss (use GANLoss)"),
        "GANFeatLoss": ("BasicSR", "a discriminator feature-matching loss"),
        "WeightedTVLoss": ("BasicSR", "a total-variation loss"),
    },
    "metric": {
        "calculate_niqe": ("BasicSR", "a no-reference quality metric"),
        "calculate_psnr_pt": ("BasicSR", "PSNR on float GPU tensors"),
        "calculate_ssim_pt": ("BasicSR", "SSIM on float GPU tensors"),
        "calculate_dists": ("traiNNer-redux", "the DISTS perceptual metric"),
        "calculate_topiq": ("traiNNer-redux", "the TOPIQ quality metric"),
    },
    "dataset": {
        "SingleImageDataset": ("BasicSR", "LQ images without GT"),
        "REDSDataset": ("BasicSR", "video frames"), "Vimeo90KDataset": ("BasicSR", "video frames"),
        "VideoTestDataset": ("BasicSR", "video frames"), "FFHQDataset": ("BasicSR", "face images"),
    },
    "optimizer": {**{name: ("BasicSR", "a torch optimizer") for name in ("Adamax", "ASGD", "RMSprop", "Rprop")},
                  "adan_sf": ("neosr", "schedule-free Adan; the nearest here is AdanScheduleFree, traiNNer-redux's, "
                              "which takes the lr, betas, weight_decay and warmup_steps keys")},
    "scheduler": {"MultiStepRestartLR": ("BasicSR", "multi-step decay with restarts")},
}


@dataclass(frozen=True)
class WithDiscriminator:
    """A name whose meaning here depends on the file: neosr's models train a GAN when ``network_d`` is set."""

    plain: str
    gan: str

    def __call__(self, file: Mapping[str, Any]) -> str:
        return self.gan if file.get("network_d") is not None else self.plain

    def __str__(self) -> str:
        return f"`{self.plain}` (`{self.gan}` with a `network_d`)"


_NEOSR_IMAGE = WithDiscriminator("SRModel", "SRGANModel")
_NEOSR_OTF = WithDiscriminator("RealESRNetModel", "RealESRGANModel")

# Their lower-case spellings of registered names (traiNNer-redux accepts any case): kind -> name -> (origin, ours).
RENAMED_COMPONENTS: Dict[str, Dict[str, Tuple[str, Union[str, WithDiscriminator]]]] = {
    "dataset": {"pairedimagedataset": ("traiNNer-redux", "PairedImageDataset"),
                "realesrgandataset": ("traiNNer-redux", "RealESRGANDataset"),
                "realesrganpaireddataset": ("traiNNer-redux", "RealESRGANPairedDataset"),
                "singleimagedataset": ("traiNNer-redux", "SingleImageDataset"),
                "paired": ("neosr", "PairedImageDataset"), "otf": ("neosr", "RealESRGANDataset"),
                "single": ("neosr", "SingleImageDataset")},
    # spandrel's networks are registered under their class names; traiNNer-redux writes them in lower case
    "arch": {"craft": ("traiNNer-redux", "CRAFT"), "fdat": ("traiNNer-redux", "FDAT"),
             "dctlsa": ("traiNNer-redux", "DCTLSA"), "ditn_real": ("traiNNer-redux", "DITN_Real")},
    "model": {"default": ("neosr", _NEOSR_IMAGE), "image": ("neosr", _NEOSR_IMAGE), "otf": ("neosr", _NEOSR_OTF),
              # SRModel pads every input to the network's input multiple and validates in tiles (val.tile_size)
              "SwinIRModel": ("BasicSR", "SRModel")},
}


def _section_matches(pattern: str, section: Tuple[Any, ...]) -> bool:
    parts = pattern.split(".") if pattern else []
    return len(parts) == len(section) and all(p in ("*", str(s)) for p, s in zip(parts, section, strict=True))


def key_rule(path: Tuple[Any, ...]) -> Optional[KeyRule]:
    """The rule for the key at ``path`` (e.g. ``('datasets', 'train', 'use_flip')``), if any."""
    section, key = path[:-1], path[-1]
    return next((r for r in KEY_RULES if r.key == key and _section_matches(r.where, section)), None)


def key_fix(path: Tuple[Any, ...], value: Any) -> Optional[Fix]:
    """What to do about an unknown key at ``path`` holding ``value``, if it is a known foreign key."""
    rule = key_rule(path)
    if rule is None:
        return None
    key = str(path[-1])
    new_value, has_value = None, False
    if rule.values is not None:
        try:
            new_value = rule.values(value, _FILE.get())
        except ValueError as exc:
            if rule.action == "remove":
                return Fix("absent", key, f"{rule.origin}'s '{key}: {_show(value)}' asks for something this trainer "
                                          f"does not provide: {exc}", str(exc))
            doc = rule.values_doc.replace("`", "")
            return Fix("absent", key, f"{rule.origin}'s '{key}' is '{rule.to}' here ({doc}), but {exc}", rule.why)
        if new_value is DEFAULT:
            return Fix("remove", key, f"{rule.origin}'s '{key}: {_show(value)}' is what this trainer does anyway "
                                      f"({rule.why}); remove it", f"{_show(value)} is the default here; {rule.why}")
        has_value = True
    if rule.action == "remove":
        return Fix("remove", key, f"'{key}' has no use here ({rule.why}); remove it", rule.why)
    if rule.action == "move":
        section, _, target = rule.to.rpartition(".")
        if has_value:
            return Fix("move", key, f"{rule.origin}'s '{key}: {_show(value)}' is '{rule.to}: {_show(new_value)}' "
                                    f"here ({rule.why}); move it (scripts/convert_options.py does)", rule.why,
                       new_key=section, new_value=new_value, has_value=True, target=target)
        where = "top-level " if not rule.where else ""
        return Fix("move", key, f"{rule.origin}'s {where}'{key}' belongs in the {section} section here "
                                f"({rule.to}); move it there (scripts/convert_options.py moves them all)", rule.why,
                   new_key=section, target=target)
    if rule.action == "absent":
        return Fix("absent", key, f"'{key}' is a {rule.origin} key ({rule.why}) that this trainer does not "
                                  "provide yet", rule.why)
    if not has_value:
        return Fix("rename", key, f"{rule.origin}'s '{key}' is '{rule.to}' here ({rule.why}); rename it",
                   rule.why, new_key=rule.to)
    doc = rule.values_doc.replace("`", "")
    return Fix("rename", key, f"{rule.origin}'s '{key}: {_show(value)}' is '{rule.to}: {_show(new_value)}' here "
                              f"({doc}; {rule.why}); replace it", f"{doc}; {rule.why}", new_key=rule.to,
               new_value=new_value, has_value=True)


def _show(value: Any) -> str:
    """A value as YAML writes it (``true``, ``~``, ``[1, 2]``)."""
    if value is None:
        return "~"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def component_fix(kind: str, name: Any, available: Iterable[str]) -> Optional[Fix]:
    """A foreign spelling of a component (renamed in place), or a BasicSR / Real-ESRGAN / traiNNer-redux
    component this trainer lacks: named as such (never a look-alike suggested)."""
    available = list(available)
    renamed = RENAMED_COMPONENTS.get(kind, {}).get(str(name))
    if renamed is not None and not isinstance(renamed[1], str):
        renamed = (renamed[0], renamed[1](_FILE.get()))
    if renamed is not None and renamed[1] in available:
        origin, ours = renamed
        return Fix("rename", "type", f"{origin}'s {kind} '{name}' is '{ours}' here; write type: {ours}",
                   f"{origin}'s spelling", new_key="type", new_value=ours, has_value=True)
    if renamed is not None:
        name = renamed[1]
    known = ABSENT_COMPONENTS.get(kind, {}).get(str(name))
    if known is None:
        return None
    origin, what = known
    return Fix("absent", str(name), f"'{name}' is a {origin} {kind} ({what}) that this trainer does not "
                                    f"provide; available: {', '.join(available)}", what, droppable=kind == "metric")


def inferred_model_type(raw: Mapping[str, Any]) -> Optional[str]:
    """The ``model_type`` a traiNNer-redux / neosr file without one means: they choose the training from
    ``high_order_degradation`` (synthetic LR inputs) and ``network_d`` with a ``losses`` list (a GAN); None for
    a file that has one, or that means plain SRModel."""
    if not isinstance(raw, Mapping) or "model_type" in raw:
        return None
    section = raw.get(DEGRADATION_SECTION)
    otf = raw.get("high_order_degradation", (section or {}).get("high_order_degradation")
                  if isinstance(section, Mapping) else None)
    gan = raw.get("network_d") is not None
    if otf is True:
        return "RealESRGANModel" if gan else "RealESRNetModel"
    train = raw.get("train")
    redux = isinstance(train, Mapping) and "losses" in train  # a BasicSR file's network_d alone is its mistake
    return "SRGANModel" if gan and redux else None


def model_type_fix(model_type: str) -> Fix:
    """The ``model_type`` line a traiNNer-redux file needs (:func:`inferred_model_type`)."""
    why = "traiNNer-redux chooses the training from high_order_degradation and network_d; here model_type says it"
    return Fix("add", "model_type", f"missing: {why}; add model_type: {model_type}", why, new_key="model_type",
               new_value=model_type, has_value=True)


def rename_table(exists: Callable[[KeyRule], bool] = lambda rule: False,
                 origins: Tuple[str, ...] = BASICSR_ORIGINS) -> List[str]:
    """Markdown rows for docs/coming-from-basicsr.md: the keys of :data:`KEY_RULES` from ``origins`` (those that do not
    ``exist`` here yet), and what becomes of them; keys that share their fate and reason share a row."""
    rows = [f"| {' / '.join(origins)} key | here | why |", "|---|---|---|"]
    grouped: Dict[Tuple[str, str, str, str], List[str]] = {}
    for rule in KEY_RULES:
        if exists(rule) or rule.origin not in origins:
            continue
        where = f"{rule.where.replace('*', '<phase>')}." if rule.where else ""
        if rule.action == "rename":
            here = f"`{where}{rule.to}`" + (f" ({rule.values_doc})" if rule.values_doc else "")
        elif rule.action == "move" and rule.values is not None:
            here = f"`{rule.to}`" + (f" ({rule.values_doc})" if rule.values_doc else "")
        elif rule.action == "move":
            here = f"`{rule.to.rpartition('.')[0]}.<key>` (the same name, in that section)"
        elif rule.action == "remove" and rule.values is not None:
            here = f"removed {rule.values_doc} (what this trainer does); other values: not provided"
        else:
            here = "removed" if rule.action == "remove" else "not provided yet"
        grouped.setdefault((where, here, rule.why, rule.action), []).append(rule.key)
    for (where, here, why, _action), keys in grouped.items():
        rows.append(f"| {', '.join(f'`{where}{key}`' for key in keys)} | {here} | {why} |")
    return rows


def absent_components_text(registered: Callable[[str, str], bool] = lambda kind, name: False,
                           origins: Tuple[str, ...] = BASICSR_ORIGINS) -> List[str]:
    """Markdown lines: the components of ``origins`` not provided (not ``registered`` here), by kind."""
    lines = []
    for kind, names in ABSENT_COMPONENTS.items():
        missing = [name for name, (origin, _what) in names.items() if origin in origins and not registered(kind, name)]
        if missing:
            lines.append(f"- {kind}: " + ", ".join(f"`{name}`" for name in missing))
    return lines


def renamed_components_text() -> List[str]:
    """Markdown lines: the foreign spellings of components and the names they have here."""
    return [f"- {kind}: " + ", ".join(f"`{name}` → {ours if isinstance(ours, WithDiscriminator) else f'`{ours}`'}"
                                      for name, (_origin, ours) in names.items())
            for kind, names in RENAMED_COMPONENTS.items()]
