"""neosr's TOML option files (tests/fixtures/neosr/, kept verbatim): read as YAML with their comments and line
numbers, converted in one command, and checked by train.py as they are."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path
import pytest
import yaml

from framework import cli
from framework.cli import run_main
from framework.errors import UserError
from framework.toml_source import toml_as_yaml
from framework.tools.convert_options import main as cli_convert_main

from .test_option_errors import assert_unchanged, snapshot
from .test_redux_files import _convert, _dry_run, _left_to_fix, redux_tree, work  # noqa: F401 (fixtures)

FIXTURES = Path(__file__).parent / "fixtures" / "neosr"
TEMPLATES = ["train_span.toml", "train_span_otf.toml"]


def _yaml_line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.strip() == needle)


@pytest.mark.parametrize("template", TEMPLATES)
def test_toml_reads_back_as_its_data_with_comments_and_lines(template: str) -> None:
    toml_text = (FIXTURES / template).read_text(encoding="utf-8")
    text, lines = toml_as_yaml(toml_text, template)
    assert yaml.safe_load(text) == tomllib.loads(toml_text)
    assert len(lines) == len(text.splitlines())
    # comments kept where they stood; a commented-out key written as YAML, ready to uncomment
    assert "#compile: true" in text and "#[val.metrics.psnr]" in text and "#  losses" in text
    assert "  model: dinov2  # \"vgg\", \"resnet\", \"effnet\"" in text
    toml_lines = toml_text.splitlines()
    for needle, toml_line in (("patch_size: 64", "patch_size = 64"), ("total_iter: 1000000", "total_iter = 1000000"),
                              ("optim_d:", "[train.optim_d]")):
        assert toml_lines[lines[_yaml_line_of(text, needle) - 1] - 1] == toml_line


def test_toml_forms_beyond_plain_tables_fall_back_to_a_plain_dump() -> None:
    toml_text = 'name = "x"\nnetwork_g.type = "span"\n[[datasets]]\nname = "a"\n[train]\noptim_g = {type = "Adam"}\n'
    text, lines = toml_as_yaml(toml_text, "x.toml")
    assert yaml.safe_load(text) == tomllib.loads(toml_text)
    assert text.startswith("# x.toml, as YAML") and set(lines) == {0}


def test_invalid_toml_is_one_line_and_nothing_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text('name = "x"\nscale = \n', encoding="utf-8")
    before = snapshot(tmp_path)
    rc = run_main(cli.train_main, ["-opt", "bad.toml", "--dry-run", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: bad.toml: invalid TOML: ") and "line 2" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert_unchanged(before, snapshot(tmp_path), "a refused TOML file")


def test_neosr_otf_toml_converts_citing_its_own_lines(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = FIXTURES / "train_span_otf.toml"
    original = src.read_bytes()
    _rc, out = _convert(src, tmp_path / "otf.yml", capsys)
    assert src.read_bytes() == original
    for change in ("train_span_otf.toml:3: model_type: renamed to model_type: RealESRGANModel",
                   "train_span_otf.toml:14: datasets.train.patch_size: renamed to gt_size: 256",
                   "train_span_otf.toml:20: degradations: renamed to degradation",
                   "train_span_otf.toml:37: degradation.blur_kernel_size: moved into the datasets.train section",
                   "train_span_otf.toml:65: degradation.final_sinc_prob: moved into the datasets.train section",
                   "train_span_otf.toml:174: logger.total_iter: moved to train.total_iter: 1000000"):
        assert change in out, f"{change!r} not in:\n{out}"
    written = yaml.safe_load((tmp_path / "otf.yml").read_text(encoding="utf-8"))
    source = tomllib.loads(src.read_text(encoding="utf-8"))
    train_set, degradation = written["datasets"]["train"], written["degradation"]
    assert "degradations" not in written and train_set["type"] == "RealESRGANDataset"
    for key, value in source["degradations"].items():
        assert (train_set if "kernel" in key or "sinc" in key or key.startswith(("blur_sigma", "beta"))
                else degradation)[key] == value, key
    # what is left is what this trainer does not provide, each named
    left = {m.group(1) for m in (re.match(r"^  \S+?:\d+: (\S+?): ", line) for line in _left_to_fix(out)) if m}
    assert left == {"datasets.train.augmentation", "network_d.type", "train.wavelet_guided",
                    "train.wavelet_init", "train.optim_g.type", "train.optim_d.type", "train.mssim_opt",
                    "train.consistency_opt", "train.ldl_opt", "train.fdl_opt", "train.gan_opt.type"}, out
    assert "'metagan' is a neosr arch" in out and "'adan_sf' is a neosr optimizer" in out


def test_an_unconverted_toml_gets_the_converters_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    """train.py names each foreign key at the TOML line the converter cites, with the same fix."""
    src = FIXTURES / "train_span.toml"
    _rc, out = _convert(src, tmp_path / "span.yml", capsys)
    monkeypatch.chdir(tmp_path)
    rc = run_main(cli.train_main, ["-opt", str(src), "--dry-run", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    cited = re.findall(r"^(\S+?:\d+: \S+?): ", out, re.M)
    assert len(cited) >= 8
    for where in cited:
        assert f"error: {where}: " in err, f"{where!r} not in:\n{err}"


def _with_stand_ins(options: dict) -> dict:
    """The converted neosr template with this trainer's pieces where it names what is not provided, and the
    test data's folders: everything else of the file is checked as it came out of the converter."""
    train_set, val_set = options["datasets"]["train"], options["datasets"]["val"]
    train_set.pop("augmentation")
    train_set["dataroot_gt"] = "datasets/train/dataset1/hr"
    val_set.update(dataroot_gt="datasets/val/dataset1/hr", dataroot_lq="datasets/val/dataset1/lr")
    options["network_d"] = {"type": "UNetDiscriminatorSN", "num_feat": 8}
    train = options["train"]
    for key in ("wavelet_guided", "wavelet_init", "mssim_opt", "consistency_opt", "ldl_opt", "fdl_opt"):
        train.pop(key)
    for optimizer in ("optim_g", "optim_d"):
        train[optimizer].pop("schedule_free")
        train[optimizer]["type"] = "AdanScheduleFree"
    train["losses"] = [{"type": "MSSIMLoss", "loss_weight": 1.0}, {"type": "LDLLoss", "loss_weight": 1.0}]
    train["gan_opt"] = {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.3}
    return options


@pytest.mark.parametrize("template", TEMPLATES)
def test_converted_template_with_stand_ins_dry_runs(template: str, work: Path,  # noqa: F811
                                                    capsys: pytest.CaptureFixture) -> None:
    dst = work / template.replace(".toml", ".yml")
    _convert(FIXTURES / template, dst, capsys)
    options = _with_stand_ins(yaml.safe_load(dst.read_text(encoding="utf-8")))
    assert options["model_type"] == ("RealESRGANModel" if "otf" in template else "SRGANModel")  # its network_d
    if "otf" not in template:
        options["datasets"]["train"]["dataroot_lq"] = "datasets/train/dataset1/lr"
    dst.write_text(yaml.safe_dump(options, sort_keys=False), encoding="utf-8")
    out = _dry_run(work, dst, capsys)
    for text in ("preset span = SPAN(", "net_d (UNetDiscriminatorSN)", "l_g_mssim", "l_g_ldl", "l_g_gan"):
        assert text in out, f"{text!r} not in:\n{out}"


def test_the_converted_file_is_named_yml(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = run_main(cli_convert_main, [str(FIXTURES / "train_span.toml"), "-o", str(tmp_path / "out.toml")])
    err = capsys.readouterr().err
    assert rc == 2 and "writes YAML; name the output .yml" in err and not (tmp_path / "out.toml").exists()


def test_a_removed_list_written_at_its_keys_indent_leaves_the_next_section(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    """YAML ends such a list where the next key starts, on that key's line: only the list is removed."""
    src = tmp_path / "neosr.yml"
    src.write_text("name: x\nscale: 2\ndatasets:\n  train:\n    type: paired\n    aug_prob:\n    - 0.5\n    - 0.5\n"
                   "  val:\n    name: val\n    type: paired\n", encoding="utf-8")
    _convert(src, tmp_path / "out.yml", capsys)
    written = yaml.safe_load((tmp_path / "out.yml").read_text(encoding="utf-8"))
    assert "aug_prob" not in written["datasets"]["train"]
    assert written["datasets"]["val"] == {"name": "val", "type": "PairedImageDataset"}


# Files whose fixes interact: (file name, text, where the keys must end up in the converted file)
INTERACTING = [
    ("section_and_key.toml", 'name = "x"\nmodel_type = "otf"\nscale = 2\njpeg_prob = 0.5\n\n[datasets.train]\n'
     'type = "otf"\ndataroot_gt = "gt"\n\n[degradations]\ngaussian_noise_prob = 0.5\nblur_kernel_size = 7\n',
     {"degradation": {"gaussian_noise_prob": 0.5, "jpeg_prob": 0.5},
      "datasets": {"train": {"type": "RealESRGANDataset", "dataroot_gt": "gt", "blur_kernel_size": 7}}}),
    ("four_spaces.yml", "name: x\nmodel_type: otf\nscale: 2\ndatasets:\n    train:\n        type: otf\n"
     "        dataroot_gt: gt\ndegradations:\n    gaussian_noise_prob: 0.5\n    blur_kernel_size: 7\n"
     "# first stage\n    kernel_list: ['iso']\n",
     {"degradation": {"gaussian_noise_prob": 0.5},
      "datasets": {"train": {"type": "RealESRGANDataset", "dataroot_gt": "gt", "blur_kernel_size": 7,
                             "kernel_list": ["iso"]}}}),
    ("both_sections.yml", "name: x\nscale: 2\ndegradation:\n  gaussian_noise_prob: 0.5\nmanual_seed: 1\n"
     "degradations:\n  noise_range: [1, 30]\n", {"degradation": {"gaussian_noise_prob": 0.5}, "manual_seed": 1}),
]


@pytest.mark.parametrize("name, text, expected", INTERACTING, ids=[case[0] for case in INTERACTING])
def test_fixes_that_meet_give_valid_yaml_with_every_key_in_place(name: str, text: str, expected: dict,
                                                                tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A section renamed while a key moves into it; keys moved into a 4-space file, a comment at column 0
    among them; a section renamed onto one that exists (removed, said so)."""
    src = tmp_path / name
    src.write_text(text, encoding="utf-8")
    _rc, out = _convert(src, tmp_path / "out.yml", capsys)
    written = yaml.safe_load((tmp_path / "out.yml").read_text(encoding="utf-8"))
    for key, value in expected.items():
        assert written[key] == value, f"{key}: {written[key]!r}\n{out}"
    if name == "both_sections.yml":
        assert f"{name}:6: degradations: removed (degradation is already set at line 3)" in out, out


def test_toml_edge_forms_read_or_are_refused_in_one_line(tmp_path: Path) -> None:
    """A byte-order mark is read; a string over lines keeps the lines right (or falls back to the plain dump); a
    time of day, which YAML has no value for, is one line."""
    text, lines = toml_as_yaml('\ufeffname = "x"\nscale = 2\n', "bom.toml")
    assert yaml.safe_load(text) == {"name": "x", "scale": 2}
    toml_text = 'note = """two\nlines"""\nscale = 2\n'
    text, lines = toml_as_yaml(toml_text, "multi.toml")
    assert yaml.safe_load(text) == tomllib.loads(toml_text) and len(lines) == len(text.splitlines())
    assert set(lines) == {0} or lines[_yaml_line_of(text, "scale: 2") - 1] == 3
    with pytest.raises(UserError, match=r"^t\.toml: holds a value YAML cannot hold \(a TOML time of day"):
        toml_as_yaml("start = 07:32:00\n", "t.toml")


def test_train_py_lists_a_toml_files_problems_in_its_line_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    rc = run_main(cli.train_main, ["-opt", str(FIXTURES / "train_span_otf.toml"), "--dry-run", "--no-progress"])
    err = capsys.readouterr().err
    numbers = [int(n) for n in re.findall(r"^error: \S+?\.toml:(\d+): ", err, re.M)]
    assert rc == 2 and len(numbers) > 10 and numbers == sorted(numbers), err
