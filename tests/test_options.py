"""Options: typed, read-only, defaults filled; errors name file:line, key and a suggestion; --set overrides."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml

from framework.errors import UserError
from framework.checks import check_and_build
from framework.options import DatasetOptions, Options, load_options
from framework.schema import Component

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_YML = REPO_ROOT / "options" / "train" / "example.yml"



def _load(path, overrides=(), *, built: bool = False, **kw):
    """load_options; with ``built``, also the start-up checks of what the options point at."""
    kw.setdefault("require_train", True)
    options = load_options(str(path), list(overrides), **kw)
    if built:
        check_and_build(options)
    return options


def _error(path, overrides=(), **kw) -> str:
    with pytest.raises(UserError) as info:
        _load(path, overrides, **kw)
    return str(info.value)


def _line_of(path, pattern: str) -> int:
    """1-based line number of the first line of ``path`` matching ``pattern``."""
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if re.search(pattern, line):
                return n
    raise AssertionError(f"{pattern!r} not in {path}")


# ------------------------------------------------------------------------------------------ example.yml


def test_example_yml_loads_typed_with_defaults() -> None:
    o = _load(EXAMPLE_YML)
    assert isinstance(o, Options)
    assert o.name == "example_MSRResNet_x2" and o.scale == 2
    assert o.source_file == str(EXAMPLE_YML)
    # defaults filled in
    assert o.logger.keep_last is None
    assert o.train.ema_decay == 0.0 and isinstance(o.train.ema_decay, float)  # `ema_decay: 0` in the file
    assert o.train.grad_clip_norm is None
    assert o.path.strict_load is True
    assert o.path.param_key == "params"
    assert o.path.weights_root == "weights" and o.path.experiments_root == "experiments"
    assert o.num_threads == "auto"
    default_batch = next(f.default for f in dataclasses.fields(DatasetOptions) if f.name == "batch_size_per_gpu")
    assert o.datasets["val"].batch_size_per_gpu == default_batch == 16
    assert o.datasets["val"].dataset_enlarge_ratio == 1
    assert o.datasets["val"].pin_memory is True
    # typed values
    assert o.train.total_iter == 600 and type(o.train.total_iter) is int
    assert o.train.warmup_iter == 20
    assert isinstance(o.network_g, Component) and o.network_g.type == "MSRResNet"
    assert o.network_g.kwargs["num_feat"] == 32
    assert o.train.optim_g.kwargs["lr"] == pytest.approx(1e-3)
    assert o.train.optim_g.kwargs["betas"] == (0.9, 0.99)
    assert o.train.scheduler.type == "CosineAnnealingRestartLR"
    assert o.train.scheduler.kwargs["periods"] == (600,)
    assert list(o.val.metrics) == ["psnr", "ssim"]
    assert o.train_set is o.datasets["train"]
    assert [d.name for d in o.val_sets] == ["example_val"]


def test_options_are_read_only() -> None:
    o = _load(EXAMPLE_YML)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.train.total_iter = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.logger.keep_last = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.datasets["train"].batch_size_per_gpu = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        o.datasets["x"] = o.datasets["train"]  # type: ignore[index]
    with pytest.raises(TypeError):
        o.network_g.kwargs["num_feat"] = 1  # type: ignore[index]
    assert isinstance(o.datasets, MappingProxyType)
    assert isinstance(o.val.metrics, MappingProxyType)


def _assert_plain(value, where="options") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str, f"{where}: key {k!r} is {type(k).__name__}"
            _assert_plain(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _assert_plain(v, f"{where}[{i}]")
    else:
        assert value is None or type(value) in (str, int, float, bool), \
            f"{where}: {type(value).__name__} is not a plain type"


def test_to_dict_is_plain_and_round_trips(tmp_path) -> None:
    o = _load(EXAMPLE_YML)
    d = o.to_dict()
    assert type(d) is dict
    _assert_plain(d)
    assert "source_file" not in d
    text = yaml.safe_dump(d, sort_keys=False)
    assert yaml.safe_load(text) == d
    assert d["train"]["optim_g"] == {"type": "Adam", "lr": pytest.approx(1e-3), "betas": [0.9, 0.99]}
    assert d["datasets"]["val"]["batch_size_per_gpu"] == 16
    assert d["logger"]["keep_last"] is None
    # the dumped effective options are themselves a valid options file describing the same configuration
    dumped = tmp_path / "effective.yml"
    dumped.write_text(text, encoding="utf-8")
    again = _load(dumped)
    assert again == o
    assert again.to_dict() == d


# --------------------------------------------------------------------------------------------- errors


def test_bad_key_names_file_line_key_and_suggestion(options_file, tmp_path) -> None:
    path = options_file(train={"ema_decy": 0.999})
    message = _error(path)
    line = _line_of(path, r"^\s+ema_decy:")
    assert f"{path}:{line}: train.ema_decy:" in message
    assert "did you mean 'ema_decay'" in message
    assert len(message.splitlines()) == 1


def test_several_errors_reported_at_once(options_file) -> None:
    path = options_file(train={"ema_decy": 0.999}, logger={"print_frq": 10}, scale=0,
                         val={"val_freq": "often"})
    message = _error(path)
    lines = message.splitlines()
    assert len(lines) == 4, message
    expect = {
        "train.ema_decy": ("ema_decy:", "did you mean 'ema_decay'"),
        "logger.print_frq": ("print_frq:", "did you mean 'print_freq'"),
        "scale": ("^scale:", "at least 1"),
        "val.val_freq": ("val_freq:", "whole number"),
    }
    for key, (pattern, text) in expect.items():
        line = _line_of(path, pattern)
        matching = [m for m in lines if m.startswith(f"{path}:{line}: {key}:")]
        assert matching, f"no line for {key} at line {line} in:\n{message}"
        assert text in matching[0]


def test_overrides_numbers(options_file) -> None:
    path = options_file()
    o = _load(path, ["train.total_iter=5e3", "train.optim_g.lr=1e-4", "train.scheduler.gamma=1e-1",
                     "logger.keep_last=2"])
    assert o.train.total_iter == 5000 and type(o.train.total_iter) is int
    assert o.train.optim_g.kwargs["lr"] == 1e-4 and isinstance(o.train.optim_g.kwargs["lr"], float)
    assert o.train.scheduler.kwargs["gamma"] == 0.1 and isinstance(o.train.scheduler.kwargs["gamma"], float)
    assert o.logger.keep_last == 2
    # strings like 1e-4 in the file itself (YAML 1.1 reads them as strings) are numbers too
    path2 = options_file(filename="b.yml", train={"optim_g": {"lr": "2e-4"}, "ema_decay": "9.99e-1"})
    o2 = _load(path2)
    assert o2.train.optim_g.kwargs["lr"] == 2e-4 and o2.train.ema_decay == 0.999


@pytest.mark.parametrize("value", ["5.5", "2.5e-1", "1e-3", "true", "abc"])
def test_override_non_whole_number_for_int_is_rejected(options_file, value) -> None:
    path = options_file()
    message = _error(path, [f"train.total_iter={value}"])
    assert f"--set train.total_iter={value}: train.total_iter: expected a whole number" in message


def test_override_5_5e3_is_the_whole_number_5500(options_file) -> None:
    # 5.5e3 == 5500 exactly: a whole number, accepted (docs/options.md: whole numbers only where a count is expected)
    assert _load(options_file(), ["train.total_iter=5.5e3"]).train.total_iter == 5500


def test_override_unknown_key_and_bad_syntax(options_file) -> None:
    path = options_file()
    message = _error(path, ["train.ema_decy=0.9"])
    assert "--set train.ema_decy=0.9: train.ema_decy:" in message and "did you mean 'ema_decay'" in message
    assert "key.path=value" in _error(path, ["train.total_iter"])


def test_unknown_network_type_suggests_close_name(options_file) -> None:
    path = options_file(network_g={"type": "MSRResnet"})
    message = _error(path)
    line = _line_of(path, r"^\s+type: MSRResnet")
    assert f"{path}:{line}: network_g.type:" in message
    assert "did you mean 'MSRResNet'" in message


def test_unknown_arch_kwarg_rejected_with_accepted_list(options_file) -> None:
    path = options_file(network_g={"num_feats": 8})
    message = _error(path)
    line = _line_of(path, r"^\s+num_feats:")
    assert f"{path}:{line}: network_g.num_feats: MSRResNet has no argument 'num_feats'" in message
    assert "did you mean 'num_feat'" in message
    assert "accepted: num_in_ch, num_out_ch, num_feat, num_block, upscale" in message


def test_missing_train_section_required(options_file, helpers) -> None:
    raw = helpers.tiny_options()
    del raw["train"]
    path = options_file(raw=raw)
    assert "train: missing required section" in _error(path)
    o = _load(path, require_train=False)
    assert o.train is None


# ------------------------------------------------------------------------------------------ extra checks


def test_startup_checks_accept_real_data(options_file, example_data, helpers) -> None:
    path = options_file(raw=helpers.tiny_options(example_data["root"]))
    o = _load(path, built=True)
    assert o.datasets["train"].dataset.kwargs["dataroot_gt"] == str(example_data["train_hr"])


def test_startup_checks_report_missing_folder_with_line(options_file, example_data, tmp_path, helpers) -> None:
    raw = helpers.tiny_options(example_data["root"])
    missing = str(tmp_path / "nowhere" / "HR")
    raw["datasets"]["val"]["dataroot_gt"] = missing
    path = options_file(raw=raw)
    _load(path)  # the keys are fine
    message = _error(path, built=True)
    line = _line_of(path, re.escape(missing))
    assert f"{path}:{line}: datasets.val.dataroot_gt:" in message
    assert missing in message


# ------------------------------------------------------------------------------------------ known bugs


@pytest.mark.parametrize("key,value", [("lr", "abc"), ("lr", [0.1]), ("betas", ["a", "b"])])
def test_non_number_optimizer_argument_rejected(options_file, key, value) -> None:
    path = options_file(train={"optim_g": {key: value}})
    message = _error(path)
    assert f"train.optim_g.{key}" in message


def test_network_upscale_must_match_scale(options_file, example_data, helpers) -> None:
    path = options_file(raw=helpers.tiny_options(example_data["root"]), network_g={"upscale": 3})
    message = _error(path, built=True)
    assert "network_g" in message and "scale" in message
