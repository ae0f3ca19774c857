"""``logger.save_checkpoint_format``: the weights as ``.safetensors`` beside (or instead of) the ``.pth``.

The file holds the tensors of the ``.pth``'s ``params`` (the EMA weights with EMA on), flat, as spandrel reads
it, with the architecture, scale, ``network_g`` and version as metadata; it is written with the ``.pt`` in one
atomic step (by the background writer too), pruned and archived with it, and read back by ``pretrain_path``,
``scripts/inference.py`` (which builds the network from the metadata) and ``scripts/checkpoint.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from framework.checkpoint.weights import read_weights, read_weights_file
from framework.cli import run_main
from framework.inference import Upscaler, load_network
from framework.tools.checkpoint_tool import main as checkpoint_main

from .tinyrun import load, train_in_process, write_options

COMPACT = {"type": "SRVGGNetCompact", "num_feat": 8, "num_conv": 2, "upscale": 2}


def _options(workdir: Path, fmt: str, async_save: bool, **changes: object) -> Path:
    return write_options(workdir, **{"network_g": COMPACT, "train.ema_decay": 0.9, "logger.keep_last": 1,
                                     "logger.save_checkpoint_format": fmt, "logger.async_save": async_save,
                                     **changes})


@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "background"])
def test_both_formats_hold_the_same_tensors_pruned_and_archived_together(workdir: Path, async_save: bool) -> None:
    assert train_in_process(_options(workdir, "both", async_save)) == 0
    weights = workdir / "weights"
    names = sorted(p.name for p in weights.iterdir() if not p.name.startswith("."))
    assert names == ["tiny_best.pt", "tiny_best.pth", "tiny_best.safetensors",
                     "tiny_iter_8.pt", "tiny_iter_8.pth", "tiny_iter_8.safetensors"]  # iter_4's three pruned
    for tag in ("iter_8", "best"):
        pth = load(weights / f"tiny_{tag}.pth")["params"]
        with safe_open(str(weights / f"tiny_{tag}.safetensors"), framework="pt") as fh:
            metadata = fh.metadata()
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        assert set(tensors) == set(pth) and all(torch.equal(tensors[k], pth[k]) for k in pth)
        assert metadata["architecture"] == "SRVGGNetCompact" and metadata["scale"] == "2"
        assert json.loads(metadata["network_g"]) == COMPACT and metadata["framework_version"]
        ema = load(weights / f"tiny_{tag}.pt")["model"]["ema"]["net_g"]
        assert all(torch.equal(tensors[k], ema[k]) for k in ema)  # the deployed weights are the EMA ones
    archived = workdir / "experiments" / "tiny" / "best_model"
    assert (archived / "tiny_best.safetensors").read_bytes() == (weights / "tiny_best.safetensors").read_bytes()
    record = json.loads((archived / "best_records.json").read_text())["best"]
    assert record["weights"] == ["tiny_best.pth", "tiny_best.safetensors"]


def test_safetensors_alone_opens_in_spandrel_and_fine_tunes_here(workdir: Path) -> None:
    spandrel = pytest.importorskip("spandrel")
    assert train_in_process(_options(workdir, "safetensors", False)) == 0
    weights = workdir / "weights"
    assert not list(weights.glob("*.pth"))
    path = weights / "tiny_iter_8.safetensors"
    descriptor = spandrel.ModelLoader().load_from_file(str(path))
    assert descriptor.architecture.id == "Compact" and descriptor.scale == 2
    ours = load_network(str(path))  # the network from the file's metadata, no -opt / --arch
    image = torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        difference = (descriptor(image) - Upscaler(ours, torch.device("cpu"))(image).clamp(0, 1)).abs().max().item()
    assert difference <= 1e-5
    # fine-tune: a new run starts from it
    tune = _options(workdir, "pth", False, name="tune", **{"path.pretrain_path": str(path),
                                                         "train.total_iter": 2, "val": ...})
    assert train_in_process(tune) == 0
    assert (weights / "tune_iter_2.pth").exists()
    start = read_weights(str(path))
    assert set(start) == set(read_weights_file(str(weights / "tune_iter_2.pth"))["params"])


def test_checkpoint_tool_reads_exports_and_refuses_a_truncated_file(workdir: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    assert train_in_process(_options(workdir, "safetensors", False, **{"train.total_iter": 4})) == 0
    path = workdir / "weights" / "tiny_iter_4.safetensors"
    capsys.readouterr()
    assert run_main(checkpoint_main, ["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "safetensors" in out and "architecture=SRVGGNetCompact" in out
    assert run_main(checkpoint_main, ["verify", str(path)]) == 0
    exported = workdir / "exported.safetensors"
    assert run_main(checkpoint_main, ["export", str(path.with_suffix(".pt")), "-o", str(exported)]) == 0
    pt = load(path.with_suffix(".pt"))["model"]["ema"]["net_g"]
    assert all(torch.equal(read_weights(str(exported))[k], v) for k, v in pt.items())
    truncated = workdir / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    capsys.readouterr()
    assert run_main(checkpoint_main, ["verify", str(truncated)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    opts = _options(workdir, "pth", False, name="bad", **{"path.pretrain_path": str(truncated)})
    assert train_in_process(opts) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "truncated.safetensors" in err[0] and "corrupt or truncated" in err[0], err
