"""BasicSR and Real-ESRGAN names: the one table of keys this trainer spells differently, has no use for, or
does not provide, and of their components (networks, models, losses, metrics ...) it does not provide.

Option messages and ``scripts/convert_options.py`` both read it, and the README's "Coming from BasicSR"
table is generated from it, so a rename is written down once. It is consulted only for what the schema and
the registries do not know: a key or component that gains a meaning here (a field, a registered class)
stops being looked up, so this table never shadows what exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Literal, Optional, Tuple

Action = Literal["rename", "move", "remove", "absent"]

# Real-ESRGAN writes its degradation keys at the top level; here they have a section of their own.
DEGRADATION_SECTION = "degradation"


@dataclass(frozen=True)
class KeyRule:
    """One BasicSR key: ``where`` is the dotted section (``""`` top level, ``datasets.*`` any dataset)."""

    where: str
    key: str
    action: Action
    why: str
    to: str = ""  # rename: our key (same section); move: the dotted key it belongs at
    values: Optional[Callable[[Any], Any]] = None  # rename with a value change: BasicSR value -> ours
    values_doc: str = ""  # the value mapping in words, for messages and the README
    origin: str = "BasicSR"


@dataclass(frozen=True)
class Fix:
    """What to do about one key or component of a BasicSR file (attached to its :class:`Problem`).

    ``rename``: write ``new_key`` (and ``new_value`` when ``has_value``); ``move``: the key, as written, into
    the section ``new_key`` names (``degradation``); ``remove``: delete the key;
    ``absent``: a feature this trainer lacks, which only ``droppable`` ones (a metric: reporting only) may be
    commented out for."""

    action: Action
    key: str
    message: str
    why: str = ""
    new_key: str = ""
    new_value: Any = None
    has_value: bool = False
    droppable: bool = False


def _num_gpu(value: Any) -> str:
    if value == "auto":
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return "cpu" if value == 0 else "cuda"
    raise ValueError(f"expected 0, a GPU count or auto, got {value!r}")


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
    KeyRule("path", "param_key_g", "rename", "one network per file: no _g suffix", to="param_key"),
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
    # --- traiNNer-redux / neosr spellings of the speed options
    KeyRule("train", "accum_iter", "rename", "micro-batches per optimizer step", to="accumulate_steps",
            origin="traiNNer-redux"),
    KeyRule("train", "use_channels_last", "rename", "channels-last memory format", to="channels_last",
            origin="traiNNer-redux"),
    *(KeyRule("train", key, "remove", "one key says the precision here: train.mixed_precision: bf16 (what "
              "use_amp with amp_bf16 meant) or fp16 (use_amp alone)", origin="traiNNer-redux")
      for key in ("use_amp", "amp_bf16")),
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
)

# Registered names of BasicSR / Real-ESRGAN this trainer lacks: kind (as the registries name themselves) ->
# name -> (origin, what it is).
ABSENT_COMPONENTS: Dict[str, Dict[str, Tuple[str, str]]] = {
    "model": {
        "VideoBaseModel": ("BasicSR", "video restoration"), "EDVRModel": ("BasicSR", "video restoration"),
        "VideoRecurrentModel": ("BasicSR", "video restoration"),
        "VideoGANModel": ("BasicSR", "video restoration"), "VideoRecurrentGANModel": ("BasicSR", "video restoration"),
        "SwinIRModel": ("BasicSR", "SwinIR's tiled validation"), "HiFaceGANModel": ("BasicSR", "face restoration"),
        "StyleGAN2Model": ("BasicSR", "face generation"),
    },
    "arch": {
        "SwinIR": ("BasicSR", "a transformer SR network"), "RCAN": ("BasicSR", "a channel-attention SR network"),
        "ECBSR": ("BasicSR", "an edge-oriented SR network"), "RIDNet": ("BasicSR", "a denoising network"),
        "EDVR": ("BasicSR", "a video network"), "BasicVSR": ("BasicSR", "a video network"),
        "IconVSR": ("BasicSR", "a video network"), "BasicVSRPlusPlus": ("BasicSR", "a video network"),
        "DUF": ("BasicSR", "a video network"), "TOFlow": ("BasicSR", "a video network"),
        "DFDNet": ("BasicSR", "a face network"), "HiFaceGAN": ("BasicSR", "a face network"),
        "StyleGAN2Generator": ("BasicSR", "a face generator"),
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
    },
    "dataset": {
        "SingleImageDataset": ("BasicSR", "LQ images without GT"),
        "REDSDataset": ("BasicSR", "video frames"), "Vimeo90KDataset": ("BasicSR", "video frames"),
        "VideoTestDataset": ("BasicSR", "video frames"), "FFHQDataset": ("BasicSR", "face images"),
    },
    "optimizer": {name: ("BasicSR", "a torch optimizer") for name in ("Adamax", "ASGD", "RMSprop", "Rprop")},
    "scheduler": {"MultiStepRestartLR": ("BasicSR", "multi-step decay with restarts")},
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
    if rule.action == "remove":
        return Fix("remove", key, f"'{key}' has no use here ({rule.why}); remove it", rule.why)
    if rule.action == "move":
        section = rule.to.rpartition(".")[0]
        return Fix("move", key, f"{rule.origin}'s top-level '{key}' belongs in the {section} section here "
                                f"({rule.to}); move it there (scripts/convert_options.py moves them all)", rule.why,
                   new_key=section)
    if rule.action == "absent":
        return Fix("absent", key, f"'{key}' is a {rule.origin} key ({rule.why}) that this trainer does not "
                                  "provide yet", rule.why)
    if rule.values is None:
        return Fix("rename", key, f"{rule.origin}'s '{key}' is '{rule.to}' here ({rule.why}); rename it",
                   rule.why, new_key=rule.to)
    try:
        new_value = rule.values(value)
    except ValueError as exc:
        doc = rule.values_doc.replace("`", "")
        return Fix("absent", key, f"{rule.origin}'s '{key}' is '{rule.to}' here ({doc}), but {exc}", rule.why)
    doc = rule.values_doc.replace("`", "")
    return Fix("rename", key, f"{rule.origin}'s '{key}: {value}' is '{rule.to}: {new_value}' here ({doc}; "
                              f"{rule.why}); replace it", f"{doc}; {rule.why}", new_key=rule.to,
               new_value=new_value, has_value=True)


def component_fix(kind: str, name: Any, available: Iterable[str]) -> Optional[Fix]:
    """A BasicSR / Real-ESRGAN component this trainer lacks: named as such (never a look-alike suggested)."""
    known = ABSENT_COMPONENTS.get(kind, {}).get(str(name))
    if known is None:
        return None
    origin, what = known
    return Fix("absent", str(name), f"'{name}' is a {origin} {kind} ({what}) that this trainer does not "
                                    f"provide; available: {', '.join(available)}", what, droppable=kind == "metric")


def rename_table(exists: Callable[[KeyRule], bool] = lambda rule: False) -> List[str]:
    """Markdown rows for the README: the keys of :data:`KEY_RULES` (those that do not ``exist`` here yet), and
    what becomes of them; keys that share their fate and reason share a row."""
    rows = ["| BasicSR / Real-ESRGAN key | here | why |", "|---|---|---|"]
    grouped: Dict[Tuple[str, str, str, str], List[str]] = {}
    for rule in KEY_RULES:
        if exists(rule):
            continue
        where = f"{rule.where.replace('*', '<phase>')}." if rule.where else ""
        if rule.action == "rename":
            here = f"`{where}{rule.to}`" + (f" ({rule.values_doc})" if rule.values_doc else "")
        elif rule.action == "move":
            here = f"`{rule.to.rpartition('.')[0]}.<key>` (the same name, in that section)"
        else:
            here = "removed" if rule.action == "remove" else "not provided yet"
        grouped.setdefault((where, here, rule.why, rule.action), []).append(rule.key)
    for (where, here, why, _action), keys in grouped.items():
        rows.append(f"| {', '.join(f'`{where}{key}`' for key in keys)} | {here} | {why} |")
    return rows


def absent_components_text(registered: Callable[[str, str], bool] = lambda kind, name: False) -> List[str]:
    """README lines: the BasicSR / Real-ESRGAN components not provided (not ``registered`` here), by kind."""
    lines = []
    for kind, names in ABSENT_COMPONENTS.items():
        missing = [name for name in names if not registered(kind, name)]
        if missing:
            lines.append(f"- {kind}: " + ", ".join(f"`{name}`" for name in missing))
    return lines
