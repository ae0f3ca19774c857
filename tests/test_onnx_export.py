"""scripts/checkpoint.py export --onnx: each network's ONNX model runs in onnxruntime like PyTorch.

onnx, onnxscript and onnxruntime are optional (the ``onnx`` extra, also in ``dev``): without them these tests
are skipped, except the one that checks the message users get then.
"""
from __future__ import annotations

import builtins
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
import torch

from framework.cli import run_main
from framework.onnx_export import TOLERANCE
from framework.tools.checkpoint_tool import main

from .tinynets import NETWORKS, arch_args, build, options_yaml, sample_image, save_pt, save_pth


def run(capsys: pytest.CaptureFixture, *argv: str) -> Tuple[int, str, List[str]]:
    code = run_main(main, list(map(str, argv)))
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def onnx_modules():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    return pytest.importorskip("onnxruntime")


def max_difference(ort, path: Path, net: torch.nn.Module, image: torch.Tensor) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": image.numpy()})[0]
    with torch.no_grad():
        expected = net(image).numpy()
    assert got.shape == expected.shape
    return float(np.abs(got - expected).max())


@pytest.mark.parametrize("name", ["RRDBNet_x2", "SRVGGNetCompact_x4", "MSRResNet_x2", "EDSR_x3"])
def test_each_network_exports_and_matches_pytorch(tmp_path: Path, capsys, name: str) -> None:
    ort = onnx_modules()
    network_g = NETWORKS[name]
    net = build(network_g)
    pth = save_pth(tmp_path / f"{name}.pth", params=net)
    code, out, err = run(capsys, "export", pth, "--onnx", "--arch", *arch_args(network_g))
    assert code == 0, err
    model = tmp_path / f"{name}.onnx"
    assert f"wrote {model}" in out and "onnxruntime equals PyTorch on the 56x40 test image" in out
    # our own check, on other sizes and a batch of two: height and width are dynamic
    image = torch.cat([sample_image(44, 60, seed=1), sample_image(44, 60, seed=2)])
    diff = max_difference(ort, model, net, image)
    print(f"{name}: onnxruntime vs PyTorch max |difference| {diff:.2e}")
    assert diff <= TOLERANCE
    import onnx

    proto = onnx.load(str(model))
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert {p.key: p.value for p in proto.metadata_props}["scale"] == str(network_g.get("scale") or
                                                                         network_g["upscale"])


def test_pt_exports_its_ema_network_with_the_saved_options(tmp_path: Path, capsys) -> None:
    ort = onnx_modules()
    saved = save_pt(tmp_path, NETWORKS["RRDBNet_x4"])
    code, out, err = run(capsys, "export", saved["path"], "--onnx", "--opset", "18")
    assert code == 0, err
    model = tmp_path / "RRDBNet_iter_4_ema.onnx"
    assert "EMA weights, opset 18" in out
    diff = max_difference(ort, model, saved["ema"], sample_image(20, 28))
    print(f"RRDBNet_x4 from a .pt: max |difference| {diff:.2e}")
    assert diff <= TOLERANCE
    code, out, err = run(capsys, "export", saved["path"], "--onnx", "--no-ema")
    assert code == 0, err
    assert max_difference(ort, tmp_path / "RRDBNet_iter_4_export.onnx", saved["net"], sample_image(20, 28)) <= TOLERANCE
    code, _, err = run(capsys, "export", saved["path"], "--onnx")
    assert code == 2
    assert err == [f"error: {model}: exists; pass --force to overwrite it, or choose another name with -o"]


def test_export_errors(tmp_path: Path, capsys) -> None:
    onnx_modules()
    pth = save_pth(tmp_path / "x.pth", params=build(NETWORKS["RRDBNet_x2"]))
    cases = [
        (["export", pth, "--onnx"], "a .pth holds weights only"),
        (["export", pth, "--onnx", "--arch", *arch_args(NETWORKS["RRDBNet_x4"])], "they fit scale=2, not scale=4"),
        (["export", pth, "--onnx", "-opt", options_yaml(tmp_path, NETWORKS["MSRResNet_x2"])], "missing key(s)"),
        (["export", pth, "--onnx", "--ema", "--arch", *arch_args(NETWORKS["RRDBNet_x2"])], "has no EMA weights"),
        (["export", pth, "--onnx", "-o", tmp_path / "x.pth", "--arch", *arch_args(NETWORKS["RRDBNet_x2"])],
         "must end with .onnx"),
        (["export", pth, "--onnx", "--opset", "11", "--arch", *arch_args(NETWORKS["RRDBNet_x2"])],
         "--opset 11: the exporter could not write this opset"),
        (["export", pth, "--arch", "RRDBNet"], "--arch: only for --onnx"),
    ]
    for argv, expected in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2, (argv, err)
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".onnx" or p.name.startswith(".")) == []


def test_without_the_onnx_extra_the_message_says_what_to_install(tmp_path: Path, capsys, monkeypatch) -> None:
    pth = save_pth(tmp_path / "x.pth", params=build(NETWORKS["RRDBNet_x2"]))
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name.split(".")[0] in ("onnx", "onnxscript", "onnxruntime"):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    monkeypatch.setattr("importlib.import_module", lambda name, package=None: no_onnx(name))
    code, _, err = run(capsys, "export", pth, "--onnx", "--arch", *arch_args(NETWORKS["RRDBNet_x2"]))
    assert code == 2
    assert len(err) == 1 and "pip install 'sr-framework[onnx]'" in err[0]
