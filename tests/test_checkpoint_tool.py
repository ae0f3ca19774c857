"""scripts/checkpoint.py (inspect, verify, export, diff) on real checkpoints of two tiny training runs.

The runs are made once per module; the tool's command lines then run as real subprocesses, all at once
(each one pays about 2 s of interpreter and torch start-up). The remaining cases run the same command
lines through ``main`` in-process, where a subprocess would add nothing but start-up time.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from .tinyrun import load as _load, make_data, REPO, train_in_process, write_options

SCRIPT = REPO / "scripts" / "checkpoint.py"
A, B = "weights/tiny_iter_4.pt", "weights/tiny_ema_iter_4.pt"  # B: EMA on, other lr and milestones


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ckpt_tool")
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        make_data(tmp)
        one = {"train.total_iter": 4, "num_threads": 1}  # 1 thread: several times faster for this tiny net
        try:
            assert train_in_process(write_options(tmp, "tiny", **one)) == 0
            assert train_in_process(write_options(tmp, "tiny_ema", **one, **{
                "train.ema_decay": 0.9, "train.optim_g.lr": 2e-4, "train.scheduler.milestones": [3]})) == 0
        finally:
            torch.set_num_threads(threads)  # the trainer set 1 for this process; later tests get theirs back
    bad = tmp / "bad"
    bad.mkdir()
    data = (tmp / A).read_bytes()
    (bad / "truncated.pt").write_bytes(data[: len(data) // 2])
    marker = tmp / "PWNED"
    with open(bad / "evil.pt", "wb") as fh:  # a plain pickle that runs code when unpickled
        pickle.dump({"params": _Evil(str(marker))}, fh)
    torch.save({"params": {"w": torch.zeros(1)}, "x": _Evil(str(marker))}, bad / "evil_zip.pth")
    (tmp / "old.pth").write_bytes(b"an older export, to be replaced with --force")
    return tmp


COMMANDS: Dict[str, List[str]] = {  # as subprocesses; the other cases run main() in-process (see below)
    "inspect_text": ["inspect", A],
    "inspect_json": ["inspect", B, "--json"],
    "verify": ["verify", A, "weights/tiny_iter_4.pth", "bad/truncated.pt", "bad/evil.pt", "bad/evil_zip.pth", B],
    "export_default": ["export", A],  # no EMA in A: net_g, to tiny_iter_4_export.pth
    "diff": ["diff", A, B],
}


@pytest.fixture(scope="module")
def cli(work: Path) -> Dict[str, subprocess.CompletedProcess]:
    """Every command of COMMANDS run as ``python scripts/checkpoint.py ...`` in the run folder, concurrently."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = {name: subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=work, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name, args in COMMANDS.items()}
    results = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=120)
            results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return result.stdout


def _user_error(result: subprocess.CompletedProcess) -> List[str]:
    """Exit 2, no traceback, only ``error:`` lines on stderr."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("error: ") for line in lines), result.stderr
    return lines


# ------------------------------------------------------------------------------------------------ in-process


@pytest.fixture(scope="module")
def tool():
    from framework.cli import run_main
    from framework.tools import checkpoint_tool as module

    def run(*argv) -> int:
        return run_main(module.main, [str(a) for a in argv])

    return run


def _in_process(tool, capsys: pytest.CaptureFixture, *argv) -> subprocess.CompletedProcess:
    """The same command line through main() in this process: same code and exit codes, no start-up time."""
    capsys.readouterr()
    code = tool(*argv)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, captured.out, captured.err)


# ------------------------------------------------------------------------------------------------ inspect


def test_inspect_text(work: Path, cli) -> None:
    out = _ok(cli["inspect_text"])
    state = _load(work / A)
    fields = dict(line.split(":", 1) for line in out.splitlines())
    fields = {k: v.strip() for k, v in fields.items()}
    assert fields["iteration"] == "4"
    assert fields["epoch"].startswith(f"{state['epoch']} (data position: epoch {state['data_position']['epoch']}, "
                                      f"{state['data_position']['batches_done']} batches done, "
                                      f"{state['data_position']['samples_done']} samples)")
    psnr = state["best"]["psnr"]
    assert fields["best"] == f"psnr {psnr['value']:.4f} @ iter {psnr['iteration']}"
    assert fields["name"] == "tiny" and fields["scale"] == "2"
    assert fields["network_g"] == "MSRResNet(num_block=1, num_feat=8, upscale=2)"
    assert fields["optimizer"] == "Adam, lr 0.001"
    assert fields["total_iter"] == "4"
    assert fields["EMA weights"].startswith("no")
    n_params = sum(t.numel() for t in state["model"]["networks"]["net_g"].values())
    tensors = len(state["model"]["networks"]["net_g"])
    assert fields["parameters"].startswith(f"{n_params:,} in {tensors} tensors (float32)")
    assert f"({(work / A).stat().st_size:,} bytes)" in fields["size"]
    assert state["torch_version"] in fields["saved"] and state["saved_at"] in fields["saved"]


def test_inspect_json(work: Path, cli) -> None:
    info = json.loads(_ok(cli["inspect_json"]))
    state = _load(work / B)
    assert info["kind"] == "training_state" and info["format_version"] == 2
    assert (info["iteration"], info["epoch"]) == (state["iteration"], state["epoch"])
    assert info["data_position"] == state["data_position"]
    assert info["best"] == state["best"]
    assert info["file_bytes"] == (work / B).stat().st_size
    net = state["model"]["networks"]["net_g"]
    assert info["weights_bytes"] == sum(t.numel() * t.element_size() for t in net.values())
    assert info["parameters"] == sum(t.numel() for t in net.values())
    assert info["ema"] is True and info["ema_weights_bytes"] == info["weights_bytes"]
    assert info["config"] == {"name": "tiny_ema", "scale": 2,
                              "network_g": {"type": "MSRResNet", "args": {"num_block": 1, "num_feat": 8,
                                                                          "upscale": 2}},
                              "optim_g": {"type": "Adam", "lr": 2e-4}, "total_iter": 4, "ema_decay": 0.9}
    assert (info["framework_version"], info["torch_version"], info["saved_at"]) == \
        (state["framework_version"], state["torch_version"], state["saved_at"])


def test_inspect_weights_file(work: Path, tool, capsys) -> None:
    info = json.loads(_ok(_in_process(tool, capsys, "inspect", work / "weights/tiny_iter_4.pth", "--json")))
    params = _load(work / "weights/tiny_iter_4.pth")["params"]
    assert info["kind"] == "weights" and info["layout"] == "params" and info["keys"] == ["params"]
    assert info["tensors"] == len(params) and info["parameters"] == sum(t.numel() for t in params.values())
    assert info["dtypes"] == ["float32"] and info["file_bytes"] == (work / "weights/tiny_iter_4.pth").stat().st_size


def test_inspect_malicious_file_is_refused_without_running_it(work: Path, tool, capsys) -> None:
    lines = _user_error(_in_process(tool, capsys, "inspect", work / "bad/evil.pt"))
    assert len(lines) == 1 and "bad/evil.pt" in lines[0]
    assert not (work / "PWNED").exists(), "the malicious pickle ran code"


# ------------------------------------------------------------------------------------------------ verify


def test_verify_good_and_bad_files(work: Path, cli) -> None:
    result = cli["verify"]
    lines = _user_error(result)
    assert lines == ["error: 3 of 6 file(s) failed verification"]
    out = result.stdout.splitlines()
    assert out[0] == f"ok  {A}" and out[1] == "ok  weights/tiny_iter_4.pth" and out[5] == f"ok  {B}"
    assert out[2].startswith("BAD bad/truncated.pt: ") and "truncated" in out[2]
    assert out[3].startswith("BAD bad/evil.pt: ")
    assert out[4].startswith("BAD bad/evil_zip.pth: ") and "malicious" in out[4]
    assert len(out) == 6
    assert not (work / "PWNED").exists(), "a malicious pickle ran code"


# ------------------------------------------------------------------------------------------------ export


def test_export_without_ema_equals_the_trainers_pth(work: Path, cli) -> None:
    out = _ok(cli["export_default"])
    path = work / "weights/tiny_iter_4_export.pth"
    assert out.startswith("wrote weights/tiny_iter_4_export.pth: network weights (net_g) of iteration 4")
    exported, trainer = _load(path), _load(work / "weights/tiny_iter_4.pth")
    assert list(exported) == ["params"]
    assert list(exported["params"]) == list(trainer["params"])
    assert all(torch.equal(exported["params"][k], v) for k, v in trainer["params"].items())


def test_export_defaults_to_ema_weights_like_the_trainer(work: Path, tool, capsys) -> None:
    out = _ok(_in_process(tool, capsys, "export", work / B))
    assert out.startswith(f"wrote {work / 'weights/tiny_ema_iter_4_ema.pth'}: EMA weights (net_g_ema)")
    exported = _load(work / "weights/tiny_ema_iter_4_ema.pth")
    trainer = _load(work / "weights/tiny_ema_iter_4.pth")  # the trainer's .pth holds the EMA weights
    state = _load(work / B)
    assert list(exported) == ["params"]
    assert all(torch.equal(exported["params"][k], v) for k, v in trainer["params"].items())
    assert all(torch.equal(exported["params"][k], v) for k, v in state["model"]["ema"]["net_g"].items())
    assert not all(torch.equal(exported["params"][k], v) for k, v in state["model"]["networks"]["net_g"].items())


def test_export_no_ema_and_force(work: Path, tool, capsys) -> None:
    out = _ok(_in_process(tool, capsys, "export", work / B, "--no-ema", "-o", work / "old.pth", "--force"))
    assert out.startswith(f"wrote {work / 'old.pth'}: network weights (net_g)")
    exported = _load(work / "old.pth")
    net_g = _load(work / B)["model"]["networks"]["net_g"]
    assert list(exported) == ["params"]
    assert list(exported["params"]) == list(net_g)
    assert all(torch.equal(exported["params"][k], v) for k, v in net_g.items())


def test_export_refuses_to_overwrite(work: Path, tool, capsys) -> None:
    before = (work / "weights/tiny_iter_4.pth").read_bytes()
    lines = _user_error(_in_process(tool, capsys, "export", work / A, "-o", work / "weights/tiny_iter_4.pth"))
    assert len(lines) == 1 and "weights/tiny_iter_4.pth: exists" in lines[0] and "--force" in lines[0]
    assert (work / "weights/tiny_iter_4.pth").read_bytes() == before
    assert not [p for p in (work / "weights").iterdir() if ".tmp." in p.name]


# ------------------------------------------------------------------------------------------------ diff


def test_diff_lists_changed_options(cli) -> None:
    lines = _ok(cli["diff"]).splitlines()
    assert lines == [
        "iteration: 4 -> 4",
        "epoch: 2 -> 2",
        "name: 'tiny' -> 'tiny_ema'",
        "train.ema_decay: 0.0 -> 0.9",
        "train.optim_g.lr: 0.001 -> 0.0002",
        "train.scheduler.milestones: [5] -> [3]",
    ]


# ------------------------------------------------------------------------------------------------ errors


def test_error_paths_give_one_line_and_exit_2(work: Path, tmp_path: Path, tool, capsys) -> None:
    malformed = tmp_path / "x_iter_1.pt"
    torch.save({"kind": "training_state", "format_version": 1, "iteration": 1}, malformed)
    (tmp_path / "folder.pt").mkdir()
    cases = {
        ("export", work / A, "--ema", "-o", tmp_path / "e.pth"): "has no EMA weights",
        ("export", work / "weights/tiny_iter_4.pth", "-o", tmp_path / "w.pth"): "not a full training checkpoint",
        ("export", work / A, "-o", tmp_path / "w.pt"): "must end with .pth",
        ("export", work / A, "-o", tmp_path / "missing" / "w.pth"): "does not exist",
        ("diff", work / A, work / "weights/tiny_iter_4.pth"): "not a full training checkpoint",
        ("inspect", malformed):
            "incomplete training checkpoint (missing or invalid: epoch, data_position, model.networks",
        ("inspect", tmp_path / "folder.pt"): "is a folder",
        ("inspect", tmp_path / "nothing.pt"): "file not found",
    }
    for argv, expected in cases.items():
        lines = _user_error(_in_process(tool, capsys, *argv))
        assert len(lines) == 1 and expected in lines[0], (argv, lines)
    assert not list(tmp_path.glob("*.pth"))


def test_diff_of_identical_options(work: Path, tool, capsys) -> None:
    out = _ok(_in_process(tool, capsys, "diff", work / A, work / "weights/tiny_best.pt"))
    assert out.splitlines()[-1] == "options: identical"
