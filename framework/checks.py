"""Start-up: check what the options point at (device, output folders, weight files, data, the network) and
build it, once. The datasets and the model built here are what the run uses, so a run scans each folder and
builds each component once, and every problem is reported, with file and line, before anything is written."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch
from torch.utils.data import Dataset

from .data.build import build_dataset
from .device import select_device
from .errors import OptionError, UserError, building, did_you_mean
from .metrics import tensor_to_uint8
from .network_spec import input_channels
from .models.base import Model
from .options import Options
from .registry import METRIC_REGISTRY, MODEL_REGISTRY
from .rng import seed_everything
from .schema import Path_, Problem
from .torch_private import dynamo_supported, triton_available


@dataclass
class Built:
    """What a run starts from: the device, the model on it, and every dataset of the options by phase."""

    device: torch.device
    model: Model
    datasets: Dict[str, Dataset]

    @property
    def val_sets(self) -> Dict[str, Dataset]:
        return {phase: ds for phase, ds in self.datasets.items() if phase != "train"}


def check_and_build(options: Options) -> Built:
    """Check and build everything; raises one :class:`UserError` listing every problem found."""
    problems: List[Problem] = []
    _check_paths(options, problems, _all_valid)
    device = select_device(options) if not problems else torch.device("cpu")
    if not problems:
        _check_speed_options(options, device, problems)
    seed_everything(options.manual_seed)  # the weights' initialisation: the first draw of the run
    model = _build_model(options, device, problems)
    datasets = _build_datasets(options, problems, _all_valid)
    _check_shown_images(options, datasets, problems)
    if problems or model is None:
        raise options.error(problems)
    return Built(device, model, datasets)


def check_files(options: Options, problems: List[Problem], valid: Callable[[Path_], bool]) -> None:
    """The checks of :func:`check_and_build` that need no model (device, folders, weight files, data), for the
    sections whose keys are ``valid``: run beside the key errors of the other sections (``load_options``)."""
    _check_paths(options, problems, valid)
    _build_datasets(options, problems, valid)


def _all_valid(_key: Path_) -> bool:
    return True


def _check_paths(options: Options, problems: List[Problem], valid: Callable[[Path_], bool]) -> None:
    if valid(("device",)):
        _check_device(options, problems)
    if valid(("path",)):
        _check_output_roots(options, problems)
        _check_weight_files(options, problems)


def _build_datasets(options: Options, problems: List[Problem], valid: Callable[[Path_], bool]) -> Dict[str, Dataset]:
    datasets: Dict[str, Dataset] = {}
    if not (valid(("scale",)) and valid(("manual_seed",))):
        return datasets
    skip_val = options.train is not None and options.val is not None and not options.val.val_enabled
    for phase in options.datasets:
        if skip_val and phase != "train":
            continue  # val.val_enabled: false, traiNNer-redux's switch: the validation sets are ignored
        if valid(("datasets", phase)):
            dataset = _build_dataset(options, phase, problems, check_metrics=valid(("val",)))
            if dataset is not None:
                datasets[phase] = dataset
    return datasets


def _check_shown_images(options: Options, datasets: Dict[str, Dataset], problems: List[Problem]) -> None:
    """``val.show_images`` as names: each one an image of some validation set (where the sets list their
    images), so a typo does not silently show nothing."""
    show = options.val.show_images if options.val is not None else 0
    val_sets = [ds for phase, ds in datasets.items() if phase != "train"]
    listings = [getattr(ds, "names", None) for ds in val_sets]
    if not isinstance(show, tuple) or not listings or any(listing is None for listing in listings):
        return
    names = [os.path.splitext(name)[0] for listing in listings if listing is not None for name in listing()]
    for index, name in enumerate(show):
        if name not in names:
            problems.append(Problem(("val", "show_images", index), f"no validation image is named '{name}' (names "
                                    f"are file names without extension, e.g. '{names[0]}')"
                                    f"{did_you_mean(name, names)}"))


def _check_device(options: Options, problems: List[Problem]) -> None:
    if options.device == "cuda" and not torch.cuda.is_available():
        problems.append(Problem(("device",), "cuda asked for but no CUDA device is available "
                                             f"(torch {torch.__version__}); use device: auto or cpu"))


def _check_speed_options(options: Options, device: torch.device, problems: List[Problem]) -> None:
    """Precision and speed options this device and this installation cannot run, before anything runs."""
    train = options.train
    if train is None:
        return
    where = "on CUDA" if device.type == "cuda" else "on the CPU"
    if train.mixed_precision is not None:
        dtype = torch.bfloat16 if train.mixed_precision == "bf16" else torch.float16
        if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            problems.append(Problem(("train", "mixed_precision"), f"bf16 is not supported by "
                                    f"{torch.cuda.get_device_name(device)}; use fp16"))
        elif not _autocast_works(device, dtype):
            problems.append(Problem(("train", "mixed_precision"), f"{train.mixed_precision} autocast does not "
                                    f"run {where} with torch {torch.__version__}; use "
                                    f"{'bf16' if dtype == torch.float16 else 'fp16'} or null"))
    if not train.compile:
        if train.compile_mode != "default":
            problems.append(Problem(("train", "compile_mode"), f"'{train.compile_mode}' is set but compile is "
                                                               "false; set train.compile: true, or remove it"))
        return
    reason = compile_unavailable(device)
    if reason:
        problems.append(Problem(("train", "compile"), f"torch.compile cannot run {where}: {reason}; set "
                                                      "compile: false"))
    elif train.compile_mode == "reduce-overhead" and device.type != "cuda":
        problems.append(Problem(("train", "compile_mode"), "reduce-overhead uses CUDA graphs, which need a CUDA "
                                                           "device; use default or max-autotune-no-cudagraphs"))


def _autocast_works(device: torch.device, dtype: torch.dtype) -> bool:
    """A convolution, forward and backward, under autocast: what the training step needs."""
    try:
        conv = torch.nn.Conv2d(3, 3, 3, padding=1).to(device)
        with torch.autocast(device.type, dtype=dtype):
            out = conv(torch.zeros(1, 3, 8, 8, device=device))
        out.float().sum().backward()
        return True
    except (RuntimeError, NotImplementedError):
        return False


def compile_unavailable(device: torch.device) -> str:
    """Why torch.compile's default backend cannot run here ('' when it can)."""
    import shutil

    if not dynamo_supported():
        return f"this Python ({sys.version.split()[0]}) is not supported by torch {torch.__version__}'s dynamo"
    if device.type == "cuda":
        return "" if triton_available() else "Triton is not installed (pip install triton)"
    compiler = os.environ.get("CXX") or next((c for c in ("g++", "clang++", "c++") if shutil.which(c)), None)
    if compiler is None or shutil.which(compiler) is None:
        return "no C++ compiler found (Inductor builds its CPU kernels with g++ or clang++; install one or set CXX)"
    return ""


def _check_weight_files(options: Options, problems: List[Problem]) -> None:
    for key in ("pretrain_path", "pretrain_path_d", "resume_path"):
        value = getattr(options.path, key)
        if value and not (key == "resume_path" and value == "auto") and not os.path.isfile(value):
            problems.append(Problem(("path", key), f"file '{value}' does not exist"))


def _build_dataset(options: Options, phase: str, problems: List[Problem],
                   check_metrics: bool = True) -> Optional[Dataset]:
    """Build the dataset (scans folders and pairs files), check every image header, read its first sample."""
    try:
        dataset = build_dataset(options, phase)
        if hasattr(dataset, "verify_files"):
            dataset.verify_files()
        sample = dataset[(0, 0)] if phase == "train" else dataset[0]
    except OptionError as exc:
        problems.append(Problem(("datasets", phase) + tuple(exc.path), exc.detail))
        return None
    except UserError as exc:
        problems.append(Problem(("datasets", phase), str(exc)))
        return None
    if phase != "train" and options.val is not None and check_metrics:
        _check_metrics(options, sample, phase, problems)
    return dataset


def _build_model(options: Options, device: torch.device, problems: List[Problem]) -> Optional[Model]:
    """Build the model and push a 16x16 input through its network: argument combinations the schema cannot
    see (``upscale`` vs ``scale``, list lengths, a negative lr) fail here, each at its own key."""
    try:
        model: Model = MODEL_REGISTRY.get(options.model_type)(options, device)
    except OptionError as exc:
        problems.append(Problem(tuple(exc.path), exc.detail))
        return None
    channels = input_channels(options.network_g)
    try:
        out = model.inference(torch.zeros(1, channels, 16, 16))
    except UserError as exc:
        problems.append(Problem(("network_g",), str(exc)))
        return None
    expected = 16 * options.scale
    if tuple(out.shape[-2:]) != (expected, expected):
        problems.append(Problem(("network_g",), f"{options.network_g.type} turns 16x16 into "
                                                f"{out.shape[-1]}x{out.shape[-2]}, but scale is {options.scale} "
                                                f"(expected {expected}x{expected}); make its upscale match scale"))
    return model


def _check_output_roots(options: Options, problems: List[Problem]) -> None:
    """Each output root must be a folder, or creatable as one, and writable."""
    for key in ("weights_root", "experiments_root"):
        root = getattr(options.path, key)
        existing = root
        while existing and not os.path.exists(existing):
            existing = os.path.dirname(existing.rstrip(os.sep))
        existing = existing or "."
        if not os.path.isdir(existing):
            problems.append(Problem(("path", key), f"'{existing}' is a file, not a folder"))
        elif not os.access(existing, os.W_OK | os.X_OK):
            problems.append(Problem(("path", key), f"no permission to write in '{existing}'"))


def _check_metrics(options: Options, sample: dict, phase: str, problems: List[Problem]) -> None:
    """Run each metric on the first validation image against itself: crop_border too large for the images
    and the like fail here rather than after the first training interval."""
    assert options.val is not None
    img = tensor_to_uint8(sample["gt"])
    for name, component in options.val.metrics.items():
        try:
            with building("val", "metrics", name, args=component.kwargs):
                METRIC_REGISTRY.get(component.type)(img, img, **dict(component.kwargs))
        except OptionError as exc:
            problems.append(Problem(tuple(exc.path), f"{exc.detail} (first image of datasets.{phase}: "
                                                     f"{img.shape[-1]}x{img.shape[-2]})"))
