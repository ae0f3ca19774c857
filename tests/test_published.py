"""Fine-tuning from a published model file (a stand-in made with spandrel's own class): `type: auto` takes the
network from the file, the explicit type takes its weights, in `.pth` and `.safetensors`; a file of another
architecture is one line, exit 2, nothing written."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from framework.cli import run_main
from framework.tools.checkpoint_tool import main as checkpoint_main

from .tinyrun import load, run_train, train_in_process, write_options

spandrel = pytest.importorskip("spandrel")


def _published_span(folder: Path, fmt: str) -> Path:
    """A tiny SPAN x2 made by spandrel's class, saved the way published models are."""
    from spandrel.architectures.SPAN import SPAN

    torch.manual_seed(5)
    net = SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2)
    path = folder / f"published_span.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    else:
        torch.save(net.state_dict(), path)
    return path


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
@pytest.mark.parametrize("network", [{"type": "auto"}, {"type": "SPAN", "feature_channels": 8}])
def test_a_published_model_fine_tunes(workdir: Path, fmt: str, network: dict) -> None:
    source = _published_span(workdir, fmt)
    opt = write_options(workdir, "ft", **{"network_g": network, "path.pretrain_path": str(source), "val": ...,
                                          "train.total_iter": 1, "train.optim_g.lr": 0.0, "datasets.val": ...})
    assert train_in_process(opt) == 0
    trained = load(workdir / "weights" / "ft_iter_1.pth")["params"]
    descriptor = spandrel.ModelLoader().load_from_file(str(source))
    original = descriptor.model.state_dict()
    assert trained.keys() == original.keys()
    assert all(torch.equal(trained[k], original[k]) for k in original)  # lr 0: the file's weights, unchanged
    saved = yaml.safe_load((workdir / "experiments" / "ft" / "options_ft.yml").read_text())
    assert saved["network_g"]["type"] == "SPAN" and saved["network_g"]["feature_channels"] == 8


def test_a_file_of_another_architecture_is_one_line(workdir: Path) -> None:
    source = _published_span(workdir, "pth")
    opt = write_options(workdir, "bad", **{"path.pretrain_path": str(source)})
    result = run_train(workdir, ["-opt", str(opt)])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SPAN x2" in lines[0] and "MSRResNet" in lines[0], lines
    assert not (workdir / "weights").exists() and not (workdir / "experiments").exists()


def test_inspect_prints_spandrels_detection(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    source = _published_span(workdir, "safetensors")
    assert run_main(checkpoint_main, ["inspect", str(source)]) == 0
    assert "SPAN x2" in capsys.readouterr().out


@pytest.mark.parametrize("changes,needle", [
    ({"network_g": {"type": "SPAN", "feature_channels": 8, "upscale": 4}}, "network_g.upscale: SPAN upscales x4"),
    ({"network_g": {"type": "SwinIR", "window_size": 4, "embed_dim": 12, "depths": [1], "num_heads": [2]},
      "datasets.train.gt_size": 12}, "datasets.train.gt_size: 12 / scale 2 = 6 LR pixels, not a multiple of 4"),
    ({"network_g": {"type": "hat_xl"}}, "did you mean 'hat_l'"),
])
def test_bad_network_options_are_one_line(workdir: Path, changes: dict, needle: str) -> None:
    opt = write_options(workdir, "bad", **changes)
    result = run_train(workdir, ["-opt", str(opt)])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert not (workdir / "weights").exists() and not (workdir / "experiments").exists()
