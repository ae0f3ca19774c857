"""test.py for real, and the numbers of validation and test.py checked against code written here.

A tiny training run (``src``, validation every 2 iterations, ``val.save_img: true``) leaves ``weights/src_best.pth``;
``python test.py`` then evaluates those weights on the same validation images, twice (the second run must move
the first one's ``results/tst/`` aside). The PSNR (RGB and Y channel) and the bicubic baseline are recomputed
here from the image files and the ``.pth`` with plain numpy/torch, without the framework's metrics, validation
or degradation code: BasicSR's definition (uint8-quantised output, ``crop_border``, BT.601 Y unrounded).
"""
from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from .childproc import TEST_PY, Child
from .matlab_imresize import matlab_imresize
from .tinyrun import BASE, make_data, train_in_process, write_options

SCALE = 2
CROP = 2
METRICS = {"psnr": {"type": "calculate_psnr", "crop_border": CROP, "test_y_channel": False},
           "psnr_y": {"type": "calculate_psnr", "crop_border": CROP, "test_y_channel": True},
           "ssim": {"type": "calculate_ssim", "crop_border": CROP, "test_y_channel": False}}
TEST_SET = "val_set"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Dict:
    work = tmp_path_factory.mktemp("test_py")
    make_data(work)
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        opt = write_options(work, "src", **{"train.total_iter": 8, "val.val_freq": 2, "val.save_img": True,
                                           "val.metrics": METRICS, "logger.save_checkpoint_freq": 100})
        try:
            assert train_in_process(opt) == 0
        finally:
            torch.set_num_threads(threads)  # the trainer sets one thread per core
    test_opt = {"name": "tst", "scale": SCALE, "device": "cpu",
                "datasets": {"test_1": {"name": TEST_SET, "type": "PairedImageDataset",
                                        "dataroot_gt": "data/val/HR", "dataroot_lq": "data/val/LR_x2"}},
                "network_g": copy.deepcopy(BASE["network_g"]),
                "path": {"pretrain_path": "weights/src_best.pth"},
                "val": {"save_img": True, "metrics": METRICS}}
    (work / "tst.yml").write_text(yaml.safe_dump(test_opt))
    runs: List = []
    for _ in range(2):
        with Child([sys.executable, TEST_PY, "-opt", "tst.yml"], cwd=work) as child:
            runs.append(child.finish(timeout=120))
        if len(runs) == 1:
            first = {str(p.relative_to(work / "results" / "tst")): p.read_bytes()
                     for p in sorted((work / "results" / "tst").rglob("*")) if p.is_file()}
    return {"work": work, "runs": runs, "first": first}


def _metrics_json(run) -> Dict:
    return json.loads((run["work"] / "results" / "tst" / "metrics.json").read_text(encoding="utf-8"))


def _best_records(run) -> Dict:
    path = run["work"] / "experiments" / "src" / "best_model" / "best_records.json"
    return json.loads(path.read_text(encoding="utf-8"))["best"]


def _trainer_log(run) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (run["work"] / "experiments" / "src").glob("train_*.log"))


# ------------------------------------------------------------------------------- independent reference code


def _read(path: Path) -> np.ndarray:
    """uint8 (H, W, 3) RGB, decoded by Pillow (the framework decodes with torchvision)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).copy()


def _y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of 0-255 RGB values, as MATLAB's rgb2ycbcr, not rounded (BasicSR's test_y_channel)."""
    return 16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0


def _psnr(out: np.ndarray, gt: np.ndarray, crop: int, y: bool) -> float:
    a, b = out.astype(np.float64), gt.astype(np.float64)
    if crop:
        a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    if y:
        a, b = _y(a), _y(b)
    mse = float(np.mean((a - b) ** 2))
    return 10.0 * math.log10(255.0 ** 2 / mse)


def _to_input(lq: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(lq).permute(2, 0, 1).to(torch.float32).div(255.0).unsqueeze(0)


def _quantise(out: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float -> (H, W, 3) uint8, as the PNG a user would look at."""
    return torch.round(out[0].clamp(0.0, 1.0) * 255.0).to(torch.uint8).permute(1, 2, 0).numpy()


def _pairs(work: Path):
    """[(name, gt uint8 cropped to LQ * scale, lq uint8)] of the validation set, sorted by name."""
    out = []
    for gt_path in sorted((work / "data" / "val" / "HR").glob("*.png")):
        lq = _read(work / "data" / "val" / "LR_x2" / gt_path.name)
        gt = _read(gt_path)[: lq.shape[0] * SCALE, : lq.shape[1] * SCALE]
        out.append((gt_path.stem, gt, lq))
    assert len(out) == 2
    return out


def _network_outputs(work: Path, pth: Path) -> Dict[str, np.ndarray]:
    from framework.archs import MSRResNet  # the architecture only: inference and metrics are written here

    net = MSRResNet(**{k: v for k, v in BASE["network_g"].items() if k != "type"})
    net.load_state_dict(torch.load(pth, map_location="cpu", weights_only=True)["params"])
    net.eval()
    with torch.no_grad():
        return {name: _quantise(net(_to_input(lq))) for name, _gt, lq in _pairs(work)}


def _bicubic_outputs(work: Path) -> Dict[str, np.ndarray]:
    """Bicubic upsampling as MATLAB's imresize (the reference loop of tests/matlab_imresize.py), clamped to
    [0, 1]."""
    outs = {}
    for name, _gt, lq in _pairs(work):
        up = matlab_imresize(_to_input(lq)[0].double().numpy(), SCALE)
        outs[name] = _quantise(torch.from_numpy(up).clamp(0.0, 1.0)[None])
    return outs


def _mean_psnr(work: Path, outputs: Dict[str, np.ndarray], y: bool) -> float:
    return float(np.mean([_psnr(outputs[name], gt, CROP, y) for name, gt, _lq in _pairs(work)]))


# ------------------------------------------------------------------------------------------------ test.py


def test_test_py_writes_metrics_json_and_a_log(run) -> None:
    for rc, out, err in run["runs"]:
        assert rc == 0, err
        assert "Traceback" not in err
        assert TEST_SET in out and f"{TEST_SET} (bicubic)" in out
    data = _metrics_json(run)
    assert data["weights"] == "weights/src_best.pth"
    assert set(data["results"]) == {TEST_SET, f"{TEST_SET} (bicubic)"}
    for values in data["results"].values():
        assert set(values) == set(METRICS)
        assert all(math.isfinite(v) for v in values.values())
    # the bicubic baseline is the one to beat: a different number from the network's
    assert data["results"][TEST_SET]["psnr"] != data["results"][f"{TEST_SET} (bicubic)"]["psnr"]
    log = (run["work"] / "results" / "tst" / "test_tst.log").read_text(encoding="utf-8")
    assert f"{data['results'][TEST_SET]['psnr']:.4f}" in log and "Loaded pretrained weights" in log


def test_test_py_psnr_equals_the_best_validation_psnr(run) -> None:
    """The same weights on the same images: test.py measures what validation measured when they were best."""
    results = _metrics_json(run)["results"][TEST_SET]
    best_pt = torch.load(run["work"] / "weights" / "src_best.pt", map_location="cpu", weights_only=True)
    assert results["psnr"] == pytest.approx(best_pt["best"]["psnr"]["value"], abs=1e-9)
    record = _best_records(run)
    assert record["iteration"] == best_pt["iteration"] == best_pt["best"]["psnr"]["iteration"]
    for metric in METRICS:
        assert results[metric] == pytest.approx(record["metrics"][metric], abs=1e-9), metric


def test_a_second_test_py_run_moves_the_first_results_aside(run) -> None:
    results = run["work"] / "results"
    archived = sorted(results.glob("tst_archived_*"))
    assert len(archived) == 1, sorted(p.name for p in results.iterdir())
    moved = {str(p.relative_to(archived[0])): p.read_bytes() for p in sorted(archived[0].rglob("*")) if p.is_file()}
    assert moved == run["first"]  # every file of the first run, byte for byte
    assert {"metrics.json", "test_tst.log"} <= set(moved)
    assert (results / "tst" / "metrics.json").is_file()  # and the second run wrote its own
    assert "moved to" in run["runs"][1][1]


# ------------------------------------------------------------------------------ independent recomputation


def test_validation_psnr_recomputed_independently(run) -> None:
    """PSNR and Y-PSNR of the best weights on the validation images, computed here, equal the trainer's record
    (best_records.json, the .pt) and test.py's metrics.json."""
    work = run["work"]
    outputs = _network_outputs(work, work / "weights" / "src_best.pth")
    psnr, psnr_y = _mean_psnr(work, outputs, y=False), _mean_psnr(work, outputs, y=True)
    assert abs(psnr - psnr_y) > 1e-3  # the two definitions differ on these images: each is really checked
    record = _best_records(run)["metrics"]
    tested = _metrics_json(run)["results"][TEST_SET]
    assert record["psnr"] == pytest.approx(psnr, abs=1e-9)
    assert record["psnr_y"] == pytest.approx(psnr_y, abs=1e-9)
    assert tested["psnr"] == pytest.approx(psnr, abs=1e-9)
    assert tested["psnr_y"] == pytest.approx(psnr_y, abs=1e-9)


def test_bicubic_baseline_recomputed_independently(run) -> None:
    work = run["work"]
    outputs = _bicubic_outputs(work)
    psnr, psnr_y = _mean_psnr(work, outputs, y=False), _mean_psnr(work, outputs, y=True)
    tested = _metrics_json(run)["results"][f"{TEST_SET} (bicubic)"]
    assert tested["psnr"] == pytest.approx(psnr, abs=1e-9)
    assert tested["psnr_y"] == pytest.approx(psnr_y, abs=1e-9)
    # the trainer's log states the same baseline (4 decimals) at start-up and in its closing line
    log = _trainer_log(run)
    assert f"Bicubic baseline val: psnr {psnr:.4f}, psnr_y {psnr_y:.4f}," in log
    assert f"vs bicubic {psnr:.4f}" in log and f"vs bicubic {psnr_y:.4f}" in log


# ----------------------------------------------------------------------------------------------- save_img


def test_save_img_writes_the_images_that_were_measured(run) -> None:
    """``val.save_img: true``: test.py writes results/<name>/visualization/<set>/<image>.png and the trainer
    experiments/<name>/visualization/<set>/<image>_<iter>.png at each validation; the PSNR of those files
    against the ground truth is the PSNR reported."""
    work = run["work"]
    names = [name for name, _gt, _lq in _pairs(work)]
    tested = work / "results" / "tst" / "visualization" / TEST_SET
    assert sorted(p.name for p in tested.iterdir()) == sorted(f"{n}.png" for n in names)
    saved = {n: _read(tested / f"{n}.png") for n in names}
    assert _mean_psnr(work, saved, y=False) == pytest.approx(_metrics_json(run)["results"][TEST_SET]["psnr"],
                                                             abs=1e-9)

    trained = work / "experiments" / "src" / "visualization" / "val"
    assert sorted(p.name for p in trained.iterdir()) == sorted(f"{n}_{it}.png" for n in names for it in (2, 4, 6, 8))
    record = _best_records(run)
    at_best = {n: _read(trained / f"{n}_{record['iteration']}.png") for n in names}
    assert _mean_psnr(work, at_best, y=False) == pytest.approx(record["metrics"]["psnr"], abs=1e-9)
    assert _mean_psnr(work, at_best, y=True) == pytest.approx(record["metrics"]["psnr_y"], abs=1e-9)
