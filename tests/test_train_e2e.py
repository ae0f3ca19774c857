"""End to end through train.py's entry point: files written, their formats, TensorBoard, and archiving a rerun."""
from __future__ import annotations

import glob
import json
import math
import os
from pathlib import Path
from typing import Dict

import pytest
import torch
import yaml

from framework.cli import run_main, train_main
from framework.data.example_data import generate_example_data

REPO_ROOT = Path(__file__).resolve().parent.parent
NAME = "e2e"
VAL_NAME = "example_val"
TOTAL = 6


def _snapshot(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, helpers):
    """Two identical runs of ``train.py -opt opt.yml --no-progress`` in a fresh folder (the cwd)."""
    work = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        generate_example_data(Path("datasets") / "example", num_train=4, num_val=2, size=32, scale=2)
        raw = helpers.tiny_options("datasets/example", name=NAME)
        raw["logger"].update(save_checkpoint_freq=3, use_tb_logger=True)
        raw["val"].update(val_freq=3, metrics=helpers.example_raw()["val"]["metrics"])  # psnr and ssim
        raw["datasets"]["val"]["name"] = VAL_NAME
        raw["train"]["total_iter"] = TOTAL
        raw["train"]["scheduler"] = {"type": "CosineAnnealingRestartLR", "periods": [TOTAL],
                                     "restart_weights": [1], "eta_min": 1e-5}
        opt = helpers.write_yaml(work / "options" / "e2e.yml", raw)
        argv = ["-opt", os.path.relpath(opt, work), "--no-progress"]
        threads = torch.get_num_threads()
        try:
            rc1 = run_main(train_main, argv)
            first = {"weights": _snapshot(work / "weights"), "experiment": _snapshot(work / "experiments" / NAME)}
            rc2 = run_main(train_main, argv)
        finally:
            torch.set_num_threads(threads)  # the trainer sets one thread per core
    return {"work": work, "rc": (rc1, rc2), "first": first, "raw": raw}


def _exp(runs) -> Path:
    return runs["work"] / "experiments" / NAME


def _weights(runs) -> Path:
    return runs["work"] / "weights"


def test_exit_codes(runs) -> None:
    assert runs["rc"] == (0, 0)


def test_first_run_wrote_checkpoints(runs) -> None:
    files = set(runs["first"]["weights"])
    for tag in ("iter_3", "iter_6", "best"):
        assert f"{NAME}_{tag}.pt" in files and f"{NAME}_{tag}.pth" in files
    assert not [f for f in files if ".tmp." in f]


def test_pth_holds_exactly_params(runs) -> None:
    from framework.archs.msrresnet_arch import MSRResNet

    net = MSRResNet(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=2)
    for tag in ("iter_3", "iter_6", "best"):
        obj = torch.load(_weights(runs) / f"{NAME}_{tag}.pth", weights_only=True)
        assert list(obj) == ["params"]
        assert list(obj["params"]) == list(net.state_dict())
        net.load_state_dict(obj["params"])  # strict


def test_pt_is_full_training_state(runs) -> None:
    saved_options = yaml.safe_load((_exp(runs) / f"options_{NAME}.yml").read_text(encoding="utf-8"))
    for tag, iteration in (("iter_3", 3), ("iter_6", 6)):
        state = torch.load(_weights(runs) / f"{NAME}_{tag}.pt", weights_only=True)
        assert state["kind"] == "training_state"
        assert isinstance(state["format_version"], int)
        assert state["iteration"] == iteration
        assert {"framework_version", "torch_version", "epoch", "data_position", "model", "best", "options",
                "rng", "saved_at"} <= set(state)
        assert set(state["model"]) == {"networks", "ema", "optimizers", "schedulers", "scalers"}
        assert state["model"]["optimizers"]["optim_g"]["state"]  # Adam moments, after `iteration` steps
        assert state["model"]["schedulers"]["optim_g"]["last_epoch"] == iteration
        # 4 images, batch 2: 2 batches per epoch, so 3 and 6 iterations are 1.5 and 3 epochs
        assert state["data_position"]["epoch"] * 2 + state["data_position"]["batches_done"] == iteration
        assert state["options"] == saved_options
        pth = torch.load(_weights(runs) / f"{NAME}_{tag}.pth", weights_only=True)["params"]
        for k, v in state["model"]["networks"]["net_g"].items():
            assert torch.equal(pth[k], v)  # no EMA: the export is the network itself
    best = torch.load(_weights(runs) / f"{NAME}_best.pt", weights_only=True)
    assert best["kind"] == "training_state" and best["iteration"] in (3, 6)
    assert best["best"]["psnr"]["iteration"] == best["iteration"]


def test_experiment_folder(runs) -> None:
    exp = _exp(runs)
    logs = glob.glob(str(exp / f"train_{NAME}_*.log"))
    assert len(logs) == 1
    text = Path(logs[0]).read_text(encoding="utf-8")
    assert "vs bicubic" in text
    assert f"Final validation {VAL_NAME} @ iter {TOTAL}" in text
    saved = yaml.safe_load((exp / f"options_{NAME}.yml").read_text(encoding="utf-8"))
    assert saved["name"] == NAME and saved["train"]["total_iter"] == TOTAL
    assert saved["logger"]["keep_last"] is None  # defaults filled in
    best_pth = exp / "best_model" / f"{NAME}_best.pth"
    assert best_pth.read_bytes() == (_weights(runs) / f"{NAME}_best.pth").read_bytes()
    records = json.loads((exp / "best_model" / "best_records.json").read_text(encoding="utf-8"))
    assert records["best"]["metric"] == "psnr"
    assert records["best"]["iteration"] in (3, 6)
    assert records["history"][0]["iteration"] == 3
    assert records["best"] == records["history"][-1]
    best_state = torch.load(_weights(runs) / f"{NAME}_best.pt", weights_only=True)
    assert records["best"]["iteration"] == best_state["iteration"]


def _scalars(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = _exp(runs) / "tb_logger"
    assert glob.glob(str(tb / "events.out.tfevents.*"))
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_scalars(runs) -> None:
    scalars = _scalars(runs)
    assert {"losses/l_pix", "lr", f"metrics/{VAL_NAME}/psnr", f"metrics/{VAL_NAME}/ssim"} <= set(scalars)
    assert [s for s, _ in scalars["losses/l_pix"]] == [2, 4, 6]
    assert [s for s, _ in scalars["lr"]] == [2, 4, 6]
    assert all(v > 0 and math.isfinite(v) for _, v in scalars["losses/l_pix"])
    assert [s for s, _ in scalars[f"metrics/{VAL_NAME}/psnr"]] == [3, 6]
    records = json.loads((_exp(runs) / "best_model" / "best_records.json").read_text(encoding="utf-8"))
    psnr = dict(scalars[f"metrics/{VAL_NAME}/psnr"])
    assert psnr[records["best"]["iteration"]] == pytest.approx(records["best"]["metrics"]["psnr"], rel=1e-6)
    assert max(psnr.values()) == pytest.approx(records["best"]["metrics"]["psnr"], rel=1e-6)


def _cosine_lr(step: int) -> float:
    """The learning rate optimizer step ``step`` (1-based) runs with: base 1e-3, periods [6], eta_min 1e-5."""
    return 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * (step - 1) / TOTAL))


def test_logged_lr_is_the_rate_of_that_iteration(runs) -> None:
    lr = dict(_scalars(runs)["lr"])
    for step in (2, 4, 6):
        assert lr[step] == pytest.approx(_cosine_lr(step), rel=1e-5)


def test_rerun_archives_previous_results_without_loss(runs) -> None:
    work, first = runs["work"], runs["first"]
    archived_exp = glob.glob(str(work / "experiments" / f"{NAME}_archived_*"))
    assert len(archived_exp) == 1
    assert _snapshot(Path(archived_exp[0])) == first["experiment"]  # every file, byte for byte
    archived_w = [p for p in glob.glob(str(work / "weights" / f"archived_{NAME}_*")) if os.path.isdir(p)]
    assert len(archived_w) == 1
    assert _snapshot(Path(archived_w[0])) == first["weights"]
    # the new run wrote its own, complete set
    now = {f for f in os.listdir(work / "weights") if os.path.isfile(work / "weights" / f)}
    assert now == set(first["weights"])
    exp = _exp(runs)
    logs = glob.glob(str(exp / f"train_{NAME}_*.log"))
    assert len(logs) == 1
    text = Path(logs[0]).read_text(encoding="utf-8")
    assert "already existed: moved to" in text and "vs bicubic" in text
    assert (exp / "best_model" / "best_records.json").is_file()
    records = json.loads((exp / "best_model" / "best_records.json").read_text(encoding="utf-8"))
    assert records["history"][0]["iteration"] == 3  # a fresh history, not appended to the old one
    assert len(glob.glob(str(exp / "tb_logger" / "events.out.tfevents.*"))) == 1


def test_rerun_is_deterministic(runs) -> None:
    """Same options, same seed: the second run's weights equal the first's (now in the archive)."""
    work = runs["work"]
    archived = Path([p for p in glob.glob(str(work / "weights" / f"archived_{NAME}_*")) if os.path.isdir(p)][0])
    old = torch.load(archived / f"{NAME}_iter_6.pth", weights_only=True)["params"]
    new = torch.load(work / "weights" / f"{NAME}_iter_6.pth", weights_only=True)["params"]
    assert old.keys() == new.keys()
    for k in old:
        assert torch.equal(old[k], new[k]), k


def test_option_error_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys, helpers) -> None:
    monkeypatch.chdir(tmp_path)
    opt = helpers.write_yaml(tmp_path / "opt.yml", helpers.tiny_options("datasets/example", name=NAME))
    rc = run_main(train_main, ["-opt", "opt.yml", "--no-progress", "--set", "train.ema_decy=0.9"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("train.ema_decy" in line and "did you mean 'ema_decay'" in line for line in err)
    assert all(line.startswith("error: ") for line in err)
    assert "Traceback" not in "\n".join(err)
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(opt)]  # no experiments/, no weights/
