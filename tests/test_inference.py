"""scripts/inference.py and framework.inference: weights and network sources, tiling, channels, errors."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
import torch
from torchcodec.encoders import JpegEncoder

from framework.cli import run_main
from framework.data.image_io import decode_file, to_float, to_integer, write_image
from framework.inference import Upscaler, load_network
from framework.tiling import axis_windows
from framework.logger import console_logging
from framework.models.base import load_pretrained
from framework.models.sr_model import SRModel
from framework.options import load_options
from framework.tools.inference import main

from .tinynets import NETWORKS, arch_args, build, options_yaml, sample_image, save_pt, save_pth

REPO = Path(__file__).resolve().parents[1]
X2 = NETWORKS["RRDBNet_x2"]
CPU = torch.device("cpu")


def run(capsys: pytest.CaptureFixture, *argv: str) -> Tuple[int, str, List[str]]:
    """The tool in-process: exit code, stdout, the lines of stderr."""
    code = run_main(main, [*map(str, argv), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def one_error(err: List[str]) -> str:
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture
def x2_pth(tmp_path: Path) -> Path:
    return save_pth(tmp_path / "x2.pth", params=build(X2))


@pytest.fixture
def photos(tmp_path: Path, example_data) -> Path:
    """A folder of images: two of the generated example set (in a sub-folder), RGB, gray, RGBA, gray + alpha,
    16-bit RGB and a JPEG."""
    folder = tmp_path / "photos"
    for src in sorted(Path(example_data["val_lr"]).glob("*.png")):
        write_image(decode_file(str(src)), str(folder / "example" / src.name))
    img = sample_image(23, 31)[0]
    alpha = torch.linspace(0, 1, 31).expand(1, 23, 31)
    write_image(to_integer(img), str(folder / "rgb.png"))
    write_image(to_integer(img[:1]), str(folder / "gray.png"))
    write_image(to_integer(torch.cat([img, alpha])), str(folder / "rgba.png"))
    write_image(to_integer(torch.cat([img[:1], alpha])), str(folder / "gray_alpha.png"))
    write_image(to_integer(img, torch.uint16), str(folder / "deep" / "rgb16.png"))
    JpegEncoder(to_integer(img)).to_file(str(folder / "photo.jpg"), quality=90)
    return folder


# ------------------------------------------------------------------------------------------------ tiling


@pytest.mark.parametrize("length,tile,pad", [(45, 16, 8), (16, 16, 8), (10, 32, 8), (61, 7, 3), (64, 16, 0)])
def test_tiles_cover_the_image_once_in_equal_windows(length: int, tile: int, pad: int) -> None:
    windows = axis_windows(length, tile, pad)
    kept = [i for _, _, start, end in windows for i in range(start, end)]
    assert kept == list(range(length))  # every pixel kept exactly once, in order
    assert len({end - start for start, end, _, _ in windows}) == 1  # one size: tiles can be batched
    for start, end, keep_start, keep_end in windows:
        assert 0 <= start <= keep_start < keep_end <= end <= length
        assert keep_start - start >= min(pad, keep_start)  # context wherever the image has it
        assert end - keep_end >= min(pad, length - keep_end)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_tiled_output_equals_untiled(name: str, tmp_path: Path) -> None:
    """Tiles of 16 px with 16 px of context on a 61x45 image: within 1/255 of the whole-image output, and the
    8-bit images differ by at most one level."""
    network_g = NETWORKS[name]
    pth_net = build(network_g)
    network = _network(pth_net, network_g, tmp_path)
    img = sample_image()
    whole = Upscaler(network, CPU)(img)
    assert whole.shape[-2:] == (45 * network.scale, 61 * network.scale)
    tiled = Upscaler(network, CPU, tile=16, tile_pad=16, batch=3)(img)
    diff = (tiled - whole).abs().max().item()
    print(f"{name}: max |tiled - untiled| = {diff:.2e}")
    assert diff <= 1 / 255
    levels = (to_integer(tiled[0]).int() - to_integer(whole[0]).int()).abs().max().item()
    assert levels <= 1


def _network(net: torch.nn.Module, network_g: dict, folder: Path):
    return load_network(str(save_pth(folder / "w.pth", params=net)), arch=arch_args(network_g))


def test_batches_channels_last_and_bf16_change_nothing_but_rounding(tmp_path: Path) -> None:
    network = _network(build(X2), X2, tmp_path)
    img = sample_image()
    reference = Upscaler(network, CPU, tile=16, tile_pad=8)(img)
    same = Upscaler(network, CPU, tile=16, tile_pad=8, batch=4, channels_last=True)(img)
    assert (same - reference).abs().max().item() < 1e-5
    half = Upscaler(network, CPU, tile=16, tile_pad=8, precision="bf16")(img)
    assert half.dtype == torch.float32 and (half - reference).abs().max().item() < 0.02


# ------------------------------------------------------------------------------------------------ the command


def test_folder_gives_one_output_per_input_of_the_right_size(tmp_path: Path, photos: Path, x2_pth: Path,
                                                            capsys) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "-i", photos, "-o", out, "-w", x2_pth, "--arch", *arch_args(X2),
                            "--tile", "16", "--alpha", "resize")
    assert code == 0, err
    inputs = sorted(p.relative_to(photos) for p in photos.rglob("*") if p.is_file())
    outputs = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert outputs == sorted(p.with_suffix(".png") for p in inputs)
    for rel in inputs:
        src = decode_file(str(photos / rel), channels="stored")
        dst = decode_file(str(out / rel.with_suffix(".png")), channels="stored")
        assert dst.shape == (src.shape[0], src.shape[1] * 2, src.shape[2] * 2), rel
        assert dst.dtype == src.dtype, rel  # 16-bit in, 16-bit out
    assert f"Wrote {len(inputs)} image(s)" in stdout
    assert "'params' of" in stdout  # the only entry: the log says which


def test_channels_alpha_and_bit_depth(tmp_path: Path, x2_pth: Path) -> None:
    network = load_network(str(x2_pth), arch=arch_args(X2))
    up = Upscaler(network, CPU)
    img = sample_image(20, 24)[0]
    rgb = up.image(to_integer(img))
    # gray: the network sees three equal channels; the output is their luma, one channel
    gray = up.image(to_integer(img[:1]))
    y = up(to_float(to_integer(img[:1]))[None].expand(-1, 3, -1, -1))[0]
    assert gray.shape == (1, 40, 48)
    assert torch.equal(gray[0], to_integer(0.299 * y[0] + 0.587 * y[1] + 0.114 * y[2]))
    # alpha: by the network or resized; opaque stays opaque; the colour is the same either way
    alpha = torch.linspace(0, 1, 24).expand(1, 20, 24)
    rgba = to_integer(torch.cat([img, alpha]))
    by_net, by_resize = up.image(rgba, alpha="network"), up.image(rgba, alpha="resize")
    assert by_net.shape == by_resize.shape == (4, 40, 48)
    assert torch.equal(by_net[:3], rgb) and torch.equal(by_resize[:3], rgb)
    assert not torch.equal(by_net[3], by_resize[3])
    opaque = up.image(to_integer(torch.cat([img, torch.ones(1, 20, 24)])))
    assert bool((opaque[3] == 255).all())
    # 16 bits: the same picture at 257 times the values, within rounding
    deep = up.image(to_integer(img, torch.uint16))
    assert deep.dtype == torch.uint16
    assert (deep.float() / 257 - rgb.float()).abs().max() <= 1.0


def test_unreadable_file_is_skipped_and_reported(tmp_path: Path, photos: Path, x2_pth: Path, capsys) -> None:
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (photos / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "-i", photos, "-o", out, "-w", x2_pth, "--arch", *arch_args(X2))
    assert code == 2
    assert f"ERROR: skipped {photos / 'broken.png'}: cannot read image" in stdout
    assert f"ERROR: skipped {photos / 'empty.jpg'}: cannot read image" in stdout
    line = one_error(err)
    assert "2 of " in line and "broken.png" in line and "empty.jpg" in line
    assert (out / "rgb.png").is_file() and (out / "deep" / "rgb16.png").is_file()  # the rest went on
    assert not (out / "broken.png").exists()


def test_wrong_scale_is_one_line_naming_the_keys_and_nothing_is_written(tmp_path: Path, photos: Path, capsys) -> None:
    x4 = save_pth(tmp_path / "x4.pth", params=build(NETWORKS["RRDBNet_x4"]))
    out = tmp_path / "out"
    code, _, err = run(capsys, "-i", photos, "-o", out, "-w", x4, "--arch", *arch_args(X2))
    assert code == 2
    line = one_error(err)
    assert "conv_first.weight (8, 3, 3, 3) vs (8, 12, 3, 3)" in line and "they fit scale=4, not scale=2" in line
    assert not out.exists()
    # the same through an options file whose network_g is x2
    code, _, err = run(capsys, "-i", photos, "-o", out, "-w", x4, "-opt", options_yaml(tmp_path, X2))
    assert code == 2 and "conv_first.weight" in one_error(err) and not out.exists()
    # another network altogether: the keys it lacks and the keys it does not know
    code, _, err = run(capsys, "-i", photos, "-o", out, "-w", x4, "--arch", "SRVGGNetCompact", "num_feat=8")
    assert code == 2 and "missing key(s): body.0.weight" in one_error(err) and "unexpected key(s): conv_first" in err[0]


def test_existing_outputs_need_force(tmp_path: Path, x2_pth: Path, capsys) -> None:
    src = tmp_path / "in.png"
    write_image(to_integer(sample_image(12, 10)[0]), str(src))
    dst = tmp_path / "result.png"
    dst.write_bytes(b"mine")
    code, _, err = run(capsys, "-i", src, "-o", dst, "-w", x2_pth, "--arch", *arch_args(X2))
    assert code == 2 and "pass --force" in one_error(err) and dst.read_bytes() == b"mine"
    code, _, err = run(capsys, "-i", src, "-o", dst, "-w", x2_pth, "--arch", *arch_args(X2), "--force")
    assert code == 0 and decode_file(str(dst)).shape == (3, 24, 20)
    code, _, err = run(capsys, "-i", src, "-o", src, "-w", x2_pth, "--arch", *arch_args(X2), "--force")
    assert code == 2 and "would replace its input" in one_error(err)


def test_pth_with_params_and_params_ema(tmp_path: Path, capsys) -> None:
    """Inference takes params_ema by default and says so; --param-key params overrides; fine-tuning takes
    path.param_key (default params) and says so too."""
    raw_net, ema_net = build(X2, seed=1), build(X2, seed=2)
    both = save_pth(tmp_path / "both.pth", params=raw_net, params_ema=ema_net)
    src = tmp_path / "in.png"
    write_image(to_integer(sample_image(12, 10)[0]), str(src))
    img = to_float(decode_file(str(src)))[None]
    for extra, net, key in (([], ema_net, "params_ema"), (["--param-key", "params"], raw_net, "params")):
        out = tmp_path / f"{key}.png"
        code, stdout, err = run(capsys, "-i", src, "-o", out, "-w", both, "--arch", *arch_args(X2), *extra)
        assert code == 0, err
        assert f"Weights: '{key}' of {both} (entries: params, params_ema)" in stdout
        with torch.no_grad():
            assert torch.equal(decode_file(str(out)), to_integer(net(img)[0]))
    # fine-tuning: path.param_key's default, params
    options = load_options(str(options_yaml(tmp_path, X2, path={"pretrain_path": str(both)})))
    model = SRModel(options, CPU)
    with console_logging():
        load_pretrained(model, options.path)
    assert f"Weights: 'params' of {both} (entries: params, params_ema)" in capsys.readouterr().out
    for name, value in raw_net.state_dict().items():
        assert torch.equal(model.net_g.state_dict()[name], value)


def test_pt_brings_its_network_and_its_ema_weights(tmp_path: Path, capsys) -> None:
    saved = save_pt(tmp_path, NETWORKS["SRVGGNetCompact_x4"])
    src = tmp_path / "in.png"
    write_image(to_integer(sample_image(9, 11)[0]), str(src))
    img = to_float(decode_file(str(src)))[None]
    for extra, net, what in (([], saved["ema"], "EMA"), (["--param-key", "params"], saved["net"], "network")):
        out = tmp_path / f"{what}.png"
        code, stdout, err = run(capsys, "-i", src, "-o", out, "-w", saved["path"], *extra)
        assert code == 0, err
        assert f"Weights: the {what} weights of the full checkpoint {saved['path']}" in stdout
        assert f"from the options saved in {saved['path']}" in stdout
        with torch.no_grad():
            assert torch.equal(decode_file(str(out)), to_integer(net(img)[0]))


def test_options_file_names_network_and_weights(tmp_path: Path, x2_pth: Path, capsys) -> None:
    opt = options_yaml(tmp_path, X2, path={"pretrain_path": str(x2_pth)})
    src = tmp_path / "in.png"
    write_image(to_integer(sample_image(12, 10)[0]), str(src))
    code, stdout, err = run(capsys, "-i", src, "-o", tmp_path / "out", "-opt", opt)
    assert code == 0, err
    assert f"network_g of {opt}" in stdout and decode_file(str(tmp_path / "out" / "in.png")).shape == (3, 24, 20)


ARCH = ["--arch", *arch_args(X2)]


@pytest.mark.parametrize("args,expected", [
    (["--tile", "-1", *ARCH], "--tile -1: must be >= 0"),
    (["--batch", "0", *ARCH], "--batch 0: must be >= 1"),
    (["--precision", "fp16", "--device", "cpu", *ARCH], "--precision fp16: needs a CUDA device"),
    (["--arch", "Nope"], "arch 'Nope' is not registered"),
    (["--arch", "RRDBNet", "scale"], "--arch RRDBNet: 'scale' is not KEY=VALUE"),
    (["--arch", "RRDBNet", "nb=3"], "--arch RRDBNet: nb: RRDBNet has no argument 'nb'"),
    (["--arch", "RRDBNet", "scale=3"], "--arch: RRDBNet: scale must be one of 1, 2, 4, got 3"),
    ([], "a .pth holds weights only"),
])
def test_user_errors_are_one_line_with_exit_code_2(tmp_path: Path, x2_pth: Path, capsys, args, expected) -> None:
    src = tmp_path / "in.png"
    write_image(to_integer(sample_image(12, 10)[0]), str(src))
    code, _, err = run(capsys, "-i", src, "-o", tmp_path / "out", "-w", x2_pth, *args)
    assert code == 2
    assert expected in one_error(err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,expected", [
    (["-i", "nowhere.png", "-w", "x2.pth", *ARCH], "-i nowhere.png: no such file or folder"),
    (["-i", "in.png", "-w", "nope.pth", *ARCH], "--weights: nope.pth: file not found"),
    (["-i", "in.png", "-o", "out.jpg", "-w", "x2.pth", *ARCH], "-o out.jpg: outputs are PNG"),
    (["-i", "in.png", "-w", "in.png", *ARCH], "--weights: in.png: not a readable PyTorch file"),
])
def test_file_errors_are_one_line_with_exit_code_2(tmp_path: Path, x2_pth: Path, capsys, monkeypatch,
                                                    args, expected) -> None:
    monkeypatch.chdir(tmp_path)
    write_image(to_integer(sample_image(12, 10)[0]), "in.png")
    code, _, err = run(capsys, *args)
    assert code == 2
    assert expected in one_error(err)
    assert not (tmp_path / "results").exists()


def test_output_folder_inside_input_folder_is_refused(tmp_path: Path, photos: Path, x2_pth: Path, capsys) -> None:
    code, _, err = run(capsys, "-i", photos, "-o", photos / "up", "-w", x2_pth, "--arch", *arch_args(X2))
    assert code == 2 and "inside the input folder" in one_error(err)


def test_the_script_runs(tmp_path: Path, x2_pth: Path) -> None:
    """scripts/inference.py as users run it: a real process, its exit code and its output file."""
    src = tmp_path / "in.png"
    write_image(to_integer(sample_image(12, 10)[0]), str(src))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "inference.py"), "-i", str(src), "-o",
                             str(tmp_path / "out"), "-w", str(x2_pth), "--arch", *arch_args(X2), "--suffix", "_x2"],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert decode_file(str(tmp_path / "out" / "in_x2.png")).shape == (3, 24, 20)


def test_image_smaller_than_the_networks_minimum_is_padded_to_it() -> None:
    """A network that declares ``input_minimum`` (Real-CUGAN: 32 pixels) upscales a smaller image: the image is
    padded to the minimum and the output cut back to scale x its size."""
    from torch import nn

    from framework.inference import DeployNetwork, Upscaler
    from framework.schema import Component

    class NeedsSixteen(nn.Module):
        input_minimum = 16

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert min(x.shape[-2:]) >= 16, f"input {tuple(x.shape)} below the declared minimum"
            return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    network = DeployNetwork(NeedsSixteen(), Component("NeedsSixteen", {}), scale=2, in_channels=3, out_channels=3,
                            input_multiple=1, source="test", ema=False)
    img = torch.rand(1, 3, 5, 9, generator=torch.Generator().manual_seed(3))
    out = Upscaler(network, torch.device("cpu"))(img)
    assert torch.equal(out, torch.nn.functional.interpolate(img, scale_factor=2, mode="nearest"))
