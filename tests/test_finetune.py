"""Starting from given weights, read back from what the run saved: every input docs/checkpoints.md lists for
``path.pretrain_path``, and ``train.grad_clip_norm`` seen in the step the weights took.

A source run leaves known weights P. A fine-tune with learning rate 0 must start from exactly P whatever file
they come in; with SGD (lr 1, no momentum) one step moves the weights by exactly the (clipped) gradient.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest
import torch

from .tinyrun import make_data, train_in_process, write_options


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Dict:
    work = tmp_path_factory.mktemp("finetune")
    make_data(work)
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        try:
            assert train_in_process(write_options(work, "src", **{"train.total_iter": 4, "val": None})) == 0
        finally:
            torch.set_num_threads(threads)
    params = torch.load(work / "weights" / "src_iter_4.pth", map_location="cpu", weights_only=True)["params"]
    return {"work": work, "params": params}


@pytest.fixture()
def workdir(source: Dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(source["work"])
    threads = torch.get_num_threads()
    yield source["work"]
    torch.set_num_threads(threads)


def _shifted(params: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Other weights of the same shapes (to tell which entry of a file was loaded)."""
    return {k: v + 1.0 for k, v in params.items()}


def _start_weights(workdir: Path, name: str, pretrain: str, **changes) -> Dict[str, torch.Tensor]:
    """The network after one step at learning rate 0 from ``pretrain``: the weights it started from."""
    opt = write_options(workdir, name, **{"train.total_iter": 1, "val": None, "path.pretrain_path": pretrain,
                                         "train.optim_g.lr": 0.0, "train.warmup_iter": 0, **changes})
    assert train_in_process(opt) == 0
    state = torch.load(workdir / "weights" / f"{name}_iter_1.pt", map_location="cpu", weights_only=True)
    assert state["iteration"] == 1
    return state["model"]["networks"]["net_g"]


def _assert_equal(loaded: Dict[str, torch.Tensor], expected: Dict[str, torch.Tensor]) -> None:
    assert list(loaded) == list(expected)
    for key in expected:
        assert torch.equal(loaded[key], expected[key]), key


# The files, written from P; each case says which weights the run must start from.
_INPUTS = {
    # param_key: params_ema picks the EMA entry of a file holding both
    "params_ema": (lambda p: {"params": _shifted(p), "params_ema": p}, {"path.param_key": "params_ema"}),
    # the default param_key (params) picks params from the same kind of file
    "params_beside_ema": (lambda p: {"params": p, "params_ema": _shifted(p)}, {}),
    # param_key params, but the file has one entry only: it falls back to that one
    "only_key_fallback": (lambda p: {"params_ema": p}, {}),
    "bare_state_dict": (lambda p: dict(p), {}),
    # torch.compile's prefix, and DataParallel's around it
    "orig_mod_prefix": (lambda p: {"params": {f"_orig_mod.{k}": v for k, v in p.items()}}, {}),
    "module_orig_mod_prefix": (lambda p: {"params": {f"module._orig_mod.{k}": v for k, v in p.items()}}, {}),
}


@pytest.mark.parametrize("case", sorted(_INPUTS))
def test_pretrain_path_inputs(workdir: Path, source: Dict, case: str) -> None:
    make_file, changes = _INPUTS[case]
    path = workdir / f"in_{case}.pth"
    torch.save(make_file(source["params"]), path)
    loaded = _start_weights(workdir, f"ft_{case}", str(path.relative_to(workdir)), **changes)
    _assert_equal(loaded, source["params"])  # strict_load (the default): every key matched, too


# ------------------------------------------------------------------------------------------- grad_clip_norm


def _one_sgd_step(workdir: Path, name: str, clip) -> Dict[str, torch.Tensor]:
    """Weights after one SGD step (lr 1, no momentum or decay) from P: P - clipped gradient."""
    opt = write_options(workdir, name, **{"train.total_iter": 1, "val": None,
                                         "path.pretrain_path": "weights/src_iter_4.pth",
                                         "train.optim_g": {"type": "SGD", "lr": 1.0}, "train.scheduler": None,
                                         "train.warmup_iter": 0, "train.grad_clip_norm": clip})
    assert train_in_process(opt) == 0
    return torch.load(workdir / "weights" / f"{name}_iter_1.pth", map_location="cpu", weights_only=True)["params"]


def _step(source: Dict, after: Dict[str, torch.Tensor]) -> torch.Tensor:
    """The step as one flat float64 vector: P - after."""
    return torch.cat([(source["params"][k].double() - after[k].double()).flatten() for k in source["params"]])


def test_grad_clip_norm_scales_the_step_to_the_clip_norm(workdir: Path, source: Dict) -> None:
    raw = _step(source, _one_sgd_step(workdir, "noclip", None))
    raw_norm = float(raw.norm())
    assert raw_norm > 1e-3, raw_norm
    clip = raw_norm / 4  # well below the gradient's norm: clipping must act
    clipped = _step(source, _one_sgd_step(workdir, "clip", clip))
    assert float(clipped.norm()) == pytest.approx(clip, rel=1e-3)
    # same direction: the gradient scaled by clip / norm, element by element
    assert torch.allclose(clipped, raw * (clip / raw_norm), rtol=1e-3, atol=1e-6)
