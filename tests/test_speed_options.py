"""train.mixed_precision, channels_last, compile and accumulate_steps: each trains, saves and resumes bitwise on
the CPU; accumulation follows the mean gradient of the whole batch; combinations that cannot run are option
errors before anything is written."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
import torch

from .test_gan import GAN
from .tinyrun import load, train_in_process, write_options

RESUMABLE = {
    "bf16": {"train.mixed_precision": "bf16"},
    "fp16": {"train.mixed_precision": "fp16", "train.grad_clip_norm": 0.5},
    "accumulate": {"train.accumulate_steps": 2, "datasets.train.batch_size_per_gpu": 1},
    "channels_last_bf16": {"train.channels_last": True, "train.mixed_precision": "bf16", "train.ema_decay": 0.9},
    # a GAN: two optimizers, a GradScaler each, the generator stepping every other iteration, 2 micro-batches
    "gan_fp16_accumulate": {**GAN, "train.mixed_precision": "fp16", "train.accumulate_steps": 2,
                            "datasets.train.batch_size_per_gpu": 1, "train.net_d_iters": 2},
}


def _resume_matches(workdir: Path, changes: Dict[str, Any], total: int = 6, stop_at: int = 3) -> Dict[str, Any]:
    """An uninterrupted run to ``total`` and one stopped at ``stop_at`` then resumed: identical bytes."""
    common = {"train.total_iter": total, "logger.save_checkpoint_freq": 100, "val.val_freq": 3, **changes}
    full = write_options(workdir, "full", **common)
    part = write_options(workdir, "part", **common)
    assert train_in_process(full) == 0
    assert train_in_process(part, [f"train.total_iter={stop_at}"]) == 0
    assert train_in_process(part, ["path.resume_path=auto"]) == 0
    weights = workdir / "weights"
    assert (weights / f"full_iter_{total}.pth").read_bytes() == (weights / f"part_iter_{total}.pth").read_bytes()
    a, b = load(weights / f"full_iter_{total}.pt"), load(weights / f"part_iter_{total}.pt")
    for group in ("networks", "ema"):
        for net, state in a["model"][group].items():
            assert all(torch.equal(state[k], b["model"][group][net][k]) for k in state)
    assert a["model"]["scalers"] == b["model"]["scalers"]
    assert a["best"] == b["best"]
    return a


@pytest.mark.parametrize("case", list(RESUMABLE))
def test_trains_saves_and_resumes_bitwise(workdir: Path, case: str) -> None:
    state = _resume_matches(workdir, RESUMABLE[case])
    params = load(workdir / "weights" / "full_iter_6.pth")["params"]
    assert all(v.dtype == torch.float32 and v.is_contiguous() for v in params.values())  # deploy layout
    scalers = state["model"]["scalers"]
    if "fp16" in case:  # the scalers' state is part of the .pt: one per optimizer
        expected = {"optim_g", "optim_d"} if "gan" in case else {"optim_g"}
        assert set(scalers) == expected and all(scalers[name]["scale"] > 0 for name in expected)
    else:
        assert scalers == {}


@pytest.mark.slow
def test_compile_trains_saves_and_resumes_bitwise(workdir: Path) -> None:
    """torch.compile on the CPU (Inductor builds C++ kernels: slow the first time, cached afterwards)."""
    state = _resume_matches(workdir, {"train.compile": True, "val": None, "datasets.val": ...}, total=4, stop_at=2)
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in state["model"]["networks"]["net_g"])
    params = load(workdir / "weights" / "full_iter_4.pth")["params"]
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in params)


def test_accumulation_follows_the_mean_gradient_of_the_whole_batch(workdir: Path) -> None:
    """2 micro-batches of 1 == one batch of 2 (same samples; L1 is a mean), within float rounding; and the
    steps are counted as optimizer steps."""
    common = {"train.total_iter": 4, "val": None, "datasets.val": ..., "train.optim_g": {"type": "SGD", "lr": 0.1}}
    one = write_options(workdir, "one", **common)
    acc = write_options(workdir, "acc", **common, **{"train.accumulate_steps": 2,
                                                     "datasets.train.batch_size_per_gpu": 1})
    assert train_in_process(one) == 0 and train_in_process(acc) == 0
    a = load(workdir / "weights" / "one_iter_4.pth")["params"]
    b = load(workdir / "weights" / "acc_iter_4.pth")["params"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert load(workdir / "weights" / "acc_iter_4.pt")["iteration"] == 4
    start = load(workdir / "weights" / "acc_iter_4.pt")["data_position"]
    assert start == load(workdir / "weights" / "one_iter_4.pt")["data_position"]


@pytest.mark.parametrize("changes,message", [
    ({"train.compile_mode": "max-autotune"}, "train.compile_mode: 'max-autotune' is set but compile is false"),
    ({"train.compile": True, "train.compile_mode": "reduce-overhead"}, "reduce-overhead uses CUDA graphs"),
    ({"train.accumulate_steps": 3}, "x accumulate_steps 3 is larger than the 5 samples of an epoch"),
    ({"train.accum_iter": 2}, "traiNNer-redux's 'accum_iter' is 'accumulate_steps' here"),
    ({"train.use_amp": True}, "traiNNer-redux's 'use_amp: true' is 'mixed_precision: fp16' here"),
    ({"train.mixed_precision": "fp32"}, "train.mixed_precision"),
])
def test_unsupported_combinations_are_option_errors(workdir: Path, capsys: pytest.CaptureFixture,
                                                    changes: Dict[str, Any], message: str) -> None:
    opt = write_options(workdir, **changes)
    assert train_in_process(opt) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (workdir / "weights").exists() and not (workdir / "experiments").exists()


def test_compile_without_a_compiler_is_an_option_error(workdir: Path, capsys: pytest.CaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(workdir))  # no g++ / clang++ to be found
    monkeypatch.delenv("CXX", raising=False)
    opt = write_options(workdir, **{"train.compile": True})
    assert train_in_process(opt) == 2
    err = capsys.readouterr().err
    assert "train.compile: torch.compile cannot run on the CPU: no C++ compiler found" in err, err


def test_ddp_syncs_gradients_on_the_last_micro_batch_only(workdir: Path) -> None:
    """micro_batches enters every DDP wrapper's no_sync for all but the last part (a real DDP needs a process
    group: the torchrun tests train with one; here a recorder stands in for it)."""
    from contextlib import contextmanager

    from framework.models.sr_model import SRModel
    from framework.options import load_options

    class Recorder:
        syncing = True

        @contextmanager
        def no_sync(self):
            self.syncing = False
            try:
                yield
            finally:
                self.syncing = True

    options = load_options(str(write_options(workdir, **{"train.accumulate_steps": 3})))
    model = SRModel(options, torch.device("cpu"))
    wrappers = {"net_g": Recorder(), "net_d": Recorder()}
    model._ddp = wrappers  # type: ignore[assignment]
    batch = {"lq": torch.arange(6.0).view(6, 1), "gt": torch.zeros(6, 1), "name": list("abcdef")}
    seen = []
    for micro in model.micro_batches(batch):
        seen.append((micro["lq"].flatten().tolist(), micro["name"], [w.syncing for w in wrappers.values()]))
    assert seen == [([0.0, 1.0], ["a", "b"], [False, False]), ([2.0, 3.0], ["c", "d"], [False, False]),
                    ([4.0, 5.0], ["e", "f"], [True, True])]
