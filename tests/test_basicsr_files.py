"""BasicSR's published option files (tests/fixtures/basicsr/) move over in one command.

``scripts/convert_options.py`` on BasicSR's own train and test files of the model
types this trainer supports, then ``train.py --dry-run`` / ``test.py --dry-run`` on the result, pass on the
first run. The data sit at BasicSR's own relative paths (``datasets/DIV2K/...``, ``datasets/Set5/...``) in
the working directory, tiny and generated, so the files' data paths need no change at all; the weights a test
file names are written there too. On a machine without CUDA, ``num_gpu: 1`` becomes ``num_gpu: 0`` first: what
BasicSR's own comment on that line tells CPU users (``# set num_gpu: 0 for cpu mode``).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch

from framework import cli
from framework.cli import run_main
from framework.data.degradations import bicubic_downsample
from framework.data.image_io import write_image
from framework.data.synthesis import DegradationOptions
from framework.tools import convert_options

from .test_option_errors import assert_unchanged, snapshot

FIXTURES = Path(__file__).parent / "fixtures" / "basicsr"

SUPPORTED = ["train_MSRResNet_x4.yml", "train_EDSR_Mx2.yml", "train_RRDBNet_PSNR_x4.yml",
             "train_SRVGGNetCompact_x4.yml", "test_MSRResNet_x4.yml", "test_EDSR_Mx2.yml",
             "test_RRDBNet_PSNR_x4.yml", "test_SRVGGNetCompact_x4.yml"]

# GT folder -> (LQ folder, scale, LQ file-name template), at BasicSR's paths; GT sizes divide by 2 and 4.
LAYOUT: Dict[str, List[Tuple[str, int, str]]] = {
    "datasets/DF2K/DIV2K_train_HR_sub": [("datasets/DF2K/DIV2K_train_LR_bicubic_X4_sub", 4, "{}")],
    "datasets/DIV2K/DIV2K_train_HR_sub": [("datasets/DIV2K/DIV2K_train_LR_bicubic/X2_sub", 2, "{}"),
                                          ("datasets/DIV2K/DIV2K_train_LR_bicubic/X4_sub", 4, "{}")],
    "datasets/Set5/GTmod12": [("datasets/Set5/LRbicx2", 2, "{}"), ("datasets/Set5/LRbicx4", 4, "{}")],
    "datasets/Set14/GTmod12": [("datasets/Set14/LRbicx2", 2, "{}"), ("datasets/Set14/LRbicx4", 4, "{}")],
    "datasets/DIV2K/DIV2K_valid_HR": [("datasets/DIV2K/DIV2K_valid_LR_bicubic/X2", 2, "{}x2"),
                                      ("datasets/DIV2K/DIV2K_valid_LR_bicubic/X4", 4, "{}x4")],
}
META_INFO = "basicsr/data/meta_info/meta_info_DIV2K800sub_GT.txt"


def _image(seed: int, size: int) -> torch.Tensor:
    """A smooth random RGB image (uint8), so bicubic LR looks like a photo's, not like noise."""
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, size // 8, size // 8, generator=gen)
    img = torch.nn.functional.interpolate(small, size=(size, size), mode="bicubic", align_corners=False)[0]
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def basicsr_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 128x128 training pairs and one 48x48 (12-divisible) validation pair per folder, at BasicSR's paths,
    and the meta info file the MSRResNet file names (BasicSR's format: ``name (h,w,c)``)."""
    root = tmp_path_factory.mktemp("basicsr_tree")
    for n, (gt_dir, lq_dirs) in enumerate(LAYOUT.items()):
        size, count = (128, 2) if "train" in gt_dir else (48, 1)
        for i in range(count):
            name = f"{i:04d}"
            gt = _image(100 * n + i, size)
            write_image(gt, str(root / gt_dir / f"{name}.png"))
            for lq_dir, scale, template in lq_dirs:
                lq = bicubic_downsample(gt.float().div(255), scale)
                write_image((lq.clamp(0, 1) * 255).round().to(torch.uint8),
                            str(root / lq_dir / f"{template.format(name)}.png"))
    meta = root / META_INFO
    meta.parent.mkdir(parents=True)
    meta.write_text("".join(f"{i:04d}.png (128,128,3)\n" for i in range(2)))
    return root


def _write_weights(options_path: Path) -> None:
    """The ``.pth`` a test file names (``path.pretrain_path``), of its network, BasicSR's layout."""
    from framework.models.sr_model import build_network
    from framework.options import load_options

    options = load_options(str(options_path), require_train=False)
    weights = options.path.pretrain_path
    assert weights, options_path
    os.makedirs(os.path.dirname(weights), exist_ok=True)
    torch.save({"params": build_network(options).state_dict()}, weights)


def _convert(src: Path, dst: Path, capsys: pytest.CaptureFixture) -> Tuple[int, str]:
    capsys.readouterr()
    rc = run_main(convert_options.main, [str(src), "-o", str(dst)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return rc, out


@pytest.mark.parametrize("fixture", SUPPORTED)
def test_convert_then_dry_run_passes(fixture: str, basicsr_tree: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    work = tmp_path / "work"
    shutil.copytree(basicsr_tree, work, symlinks=True)
    monkeypatch.chdir(work)
    text = (FIXTURES / fixture).read_text(encoding="utf-8")
    if not torch.cuda.is_available():
        text = text.replace("num_gpu: 1  # set num_gpu: 0 for cpu mode", "num_gpu: 0  # set num_gpu: 0 for cpu mode")
    src = work / f"basicsr_{fixture}"
    src.write_text(text, encoding="utf-8")
    dst = work / fixture

    rc, out = _convert(src, dst, capsys)
    assert src.read_text(encoding="utf-8") == text, "the input was modified"
    left = [line for line in out.splitlines() if line.startswith("  ")]
    assert not left and rc == 0, f"{fixture}: left to fix:\n{out}"

    is_test = fixture.startswith("test_")
    if is_test:
        _write_weights(dst)
    before = snapshot(work)
    main = cli.test_main if is_test else cli.train_main
    rc = run_main(main, ["-opt", str(dst), "--dry-run", *([] if is_test else ["--no-progress"])])
    out, err = capsys.readouterr()
    assert rc == 0, f"{fixture}: exit code {rc}\n{err}"
    assert "nothing was written" in out, out
    assert_unchanged(before, snapshot(work), f"{fixture} --dry-run")


def test_converter_keeps_comments_and_order_and_reports_each_change(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    src = FIXTURES / "train_EDSR_Mx2.yml"
    rc, out = _convert(src, tmp_path / "edsr.yml", capsys)
    assert rc == 0, out
    before = src.read_text(encoding="utf-8").splitlines()
    after = (tmp_path / "edsr.yml").read_text(encoding="utf-8").splitlines()
    changes = [line for line in out.splitlines() if line.startswith(f"{src}:")]
    # one printed line per change, each at its line of the input
    expected = {5: "num_gpu: renamed to device: cuda", 25: "use_flip: renamed to use_hflip",
                29: "use_shuffle: removed", 57: "pretrain_model_g: renamed to pretrain_path",
                59: "resume_state: renamed to resume_path", 104: "dist_params: removed"}
    assert len(changes) == len(expected), out
    for line, text in expected.items():
        assert any(c.startswith(f"{src}:{line}: ") and text in c for c in changes), (line, text, out)
    # every comment of the input is still there, in the same order; the other lines are unchanged
    assert [x for x in before if x.lstrip().startswith("#")] == \
           [x for x in after if x.lstrip().startswith("#") and "convert_options.py" not in x]
    assert after[4] == "device: cuda  # was num_gpu: 1; set num_gpu: 0 for cpu mode"
    kept = [x for x in before if not re.match(r"\s*(num_gpu|use_flip|use_shuffle|pretrain_model_g|resume_state|"
                                              r"dist_params|backend|port):", x)]
    assert [x for x in after if "convert_options.py" not in x and not x.startswith("device:")
            and not re.match(r"\s*(use_hflip|pretrain_path|resume_path):", x)] == kept
    # converting the result again changes nothing
    capsys.readouterr()
    rc, again = _convert(tmp_path / "edsr.yml", tmp_path / "again.yml", capsys)
    assert rc == 0 and "nothing to change" in again
    assert (tmp_path / "again.yml").read_text(encoding="utf-8") == "\n".join(after) + "\n"


def test_converter_lists_what_it_cannot_map(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Real-ESRGAN's RealESRNet file with a dataset this trainer lacks (BasicSR's ``FFHQDataset``): the dataset is
    listed and kept as written; the rest converts (the degradation keys move into their section)."""
    src = tmp_path / "paired.yml"
    text = (FIXTURES / "train_realesrnet_x4plus.yml").read_text(encoding="utf-8")
    src.write_text(text.replace("type: RealESRGANDataset", "type: FFHQDataset"), encoding="utf-8")
    rc, out = _convert(src, tmp_path / "x.yml", capsys)
    assert rc == convert_options.LEFT_TO_FIX
    head, _, listed = out.partition("could not map")
    assert ("note: device: cuda, and this machine has no CUDA device" in out) is not torch.cuda.is_available()
    assert "num_gpu: renamed to device: cuda" in head and "dist_params: removed" in head
    assert "gt_usm: moved into the degradation section" in head
    assert "datasets.train.type: 'FFHQDataset' is a BasicSR dataset" in listed, out
    assert "did you mean" not in out
    written = (tmp_path / "x.yml").read_text(encoding="utf-8")
    assert "type: FFHQDataset" in written and "\n  gt_usm: True  # USM the ground-truth" in written


# Real-ESRGAN's GAN file with local data and smaller sizes (its keys and layout unchanged): the edits the test
# makes to the published file before converting it.
REAL_ESRGAN_SMALLER = {
    "num_gpu: 4": "num_gpu: 0", "gt_size: 256": "gt_size: 32", "queue_size: 180": "queue_size: 4",
    "num_worker_per_gpu: 5": "num_worker_per_gpu: 0", "batch_size_per_gpu: 12": "batch_size_per_gpu: 2",
    "num_feat: 64": "num_feat: 8", "num_block: 23": "num_block: 1", "num_grow_ch: 32": "num_grow_ch: 4",
    "blur_kernel_size: 21": "blur_kernel_size: 9", "blur_kernel_size2: 21": "blur_kernel_size2: 9"}


def test_realesrgan_file_passes_with_only_the_documented_renames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    """train_realesrgan_x4plus.yml (tests/fixtures/basicsr, as published) with local data and smaller sizes:
    the converter makes only the documented changes (moves into ``degradation``, renames, removals), the option
    checks pass, and ``train.py --dry-run`` runs its RealESRGANModel on images at the file's own data paths."""
    from framework.options import load_options

    from .test_gan import random_vgg_file

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    random_vgg_file(tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth")
    names = [f"{i:04d}.png" for i in range(2)]
    for i, name in enumerate(names):  # over half of Real-ESRGAN's 400-pixel crop: reflect-padded to it
        write_image(_image(i, 208), str(tmp_path / "datasets/DF2K" / name))
    meta = tmp_path / "datasets/DF2K/meta_info/meta_info_DF2Kmultiscale+OST_sub.txt"
    meta.parent.mkdir(parents=True)
    meta.write_text("".join(f"{name} (208,208,3)\n" for name in names))
    text = (FIXTURES / "train_realesrgan_x4plus.yml").read_text(encoding="utf-8")
    for old, new in REAL_ESRGAN_SMALLER.items():
        assert old in text, old
        text = text.replace(old, new)
    src = tmp_path / "realesrgan.yml"
    src.write_text(text, encoding="utf-8")
    rc, out = _convert(src, tmp_path / "ours.yml", capsys)
    assert rc == 0 and "could not map" not in out, out
    changes = [line.split(": ", 2)[1:] for line in out.splitlines() if line.startswith(f"{src}:")]
    kinds = {what.split(" ")[0] for _, what in changes}
    assert kinds == {"renamed", "moved", "removed"}, changes
    moved = {key for key, what in changes if what.startswith("moved into the degradation section")}
    assert moved == {"l1_gt_usm", "percep_gt_usm", "gan_gt_usm", "resize_prob", "resize_range",
                     "gaussian_noise_prob", "noise_range", "poisson_scale_range", "gray_noise_prob", "jpeg_range",
                     "second_blur_prob", "resize_prob2", "resize_range2", "gaussian_noise_prob2", "noise_range2",
                     "poisson_scale_range2", "gray_noise_prob2", "jpeg_range2", "gt_size", "queue_size"}
    options = load_options(str(tmp_path / "ours.yml"))
    degradation = options.sections["degradation"]
    assert options.model_type == "RealESRGANModel" and isinstance(degradation, DegradationOptions)
    assert (degradation.l1_gt_usm, degradation.gan_gt_usm) == (True, False)
    assert degradation.jpeg_range2 == (30, 95) and degradation.queue_size == 4
    assert options.datasets["train"].dataset is not None
    assert options.datasets["train"].dataset.kwargs["meta_info_file"].endswith("meta_info_DF2Kmultiscale+OST_sub.txt")
    # the dry run: the generator's starting weights at the file's path, then one synthesised batch
    from framework.models.sr_model import build_network

    weights = tmp_path / "experiments/pretrained_models/RealESRNet_x4plus.pth"
    weights.parent.mkdir(parents=True)
    torch.save({"params_ema": build_network(options).state_dict()}, weights)
    before = snapshot(tmp_path)
    capsys.readouterr()
    rc = run_main(cli.train_main, ["-opt", str(tmp_path / "ours.yml"), "--dry-run", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "one batch (2, 3, 8, 8) -> (2, 3, 32, 32) (gt (2, 3, 400, 400))" in out, out
    assert_unchanged(before, snapshot(tmp_path), "realesrgan --dry-run")


def test_converter_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in.yml"
    shutil.copy(FIXTURES / "test_EDSR_Mx2.yml", src)
    original = src.read_bytes()
    rc = run_main(convert_options.main, [str(src), "-o", str(src), "--force"])
    err = capsys.readouterr().err
    assert rc == 2 and "is the input file" in err and src.read_bytes() == original
    out = tmp_path / "out.yml"
    out.write_text("mine\n")
    rc = run_main(convert_options.main, [str(src), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "exists" in err and "--force" in err and out.read_text() == "mine\n"
    assert run_main(convert_options.main, [str(src), "-o", str(out), "--force"]) == 0
    assert out.read_text().startswith("name: EDSR_Mx2_f64b16_DIV2K_official")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.yml", "out.yml"]  # no temp file left
    rc = run_main(convert_options.main, [str(tmp_path / "missing.yml"), "-o", str(tmp_path / "x.yml")])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_converter_leaves_flow_mappings_to_the_user(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A key inside ``{...}`` shares its line with others: not edited, listed with its message."""
    src = tmp_path / "in.yml"
    text = (FIXTURES / "test_EDSR_Mx2.yml").read_text(encoding="utf-8")
    text = re.sub(r"(?s)\npath:\n.*?\n\n", "\npath: {pretrain_network_g: x.pth, strict_load_g: true}\n\n", text)
    src.write_text(text, encoding="utf-8")
    rc, out = _convert(src, tmp_path / "out.yml", capsys)
    assert rc == convert_options.LEFT_TO_FIX, out
    written = (tmp_path / "out.yml").read_text(encoding="utf-8")
    assert "path: {pretrain_network_g: x.pth, strict_load_g: true}" in written
    assert "path.pretrain_network_g: BasicSR's 'pretrain_network_g' is 'pretrain_path' here" in out.split(
        "could not map")[1]
