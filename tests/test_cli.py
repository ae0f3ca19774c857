"""The command line as docs/training.md promises it, through real ``python train.py`` / ``python test.py`` processes:
``--debug``, ``--verbose``, exit code 1 with a traceback for an internal error, and Ctrl-C (the first one saves
and exits 0, a second one aborts with 130 without saving).

Every read of a child's output has a deadline (tests/childproc.py).
"""
from __future__ import annotations

import re
import signal
import sys
import textwrap
from pathlib import Path


from .childproc import TEST_PY, TRAIN_PY, Child
from .tinyrun import load as _load, train_in_process, write_options


def _tree(folder: Path) -> dict:
    """{relative path: bytes} of every file below ``folder``."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _log(workdir: Path, name: str) -> str:
    logs = sorted((workdir / "experiments" / name).glob(f"train_{name}_*.log"))
    assert logs, f"no log in experiments/{name}"
    return "\n".join(p.read_text(encoding="utf-8") for p in logs)


# ------------------------------------------------------------------------------------------------------ --debug


def test_debug_runs_8_iterations_under_debug_name_and_leaves_real_results_alone(workdir: Path) -> None:
    """docs/training.md: at most 8 iterations, log every one, validate and save at 4 and 8, no TensorBoard,
    under the name ``debug_<name>``, real results untouched. The options say otherwise on every point, so each
    must come from --debug."""
    opt = write_options(workdir, "dbg", **{"train.total_iter": 20, "logger.print_freq": 100,
                                          "logger.save_checkpoint_freq": 100, "val.val_freq": 100,
                                          "logger.use_tb_logger": True})
    assert train_in_process(opt, ["train.total_iter=3"]) == 0  # the real results
    real = {"weights": _tree(workdir / "weights"), "experiments": _tree(workdir / "experiments")}
    assert "dbg_iter_3.pt" in real["weights"]

    with Child.train(workdir, "-opt", str(opt), "--debug") as child:
        rc, out, err = child.finish(timeout=120)
    assert rc == 0, err

    names = sorted(p.name for p in (workdir / "weights").iterdir() if p.name.startswith("debug_"))
    assert names == sorted(f"debug_dbg_{tag}.{ext}" for tag in ("iter_4", "iter_8", "best") for ext in ("pt", "pth"))
    state = _load(workdir / "weights" / "debug_dbg_iter_8.pt")
    assert state["iteration"] == 8 and state["options"]["name"] == "debug_dbg"
    exp = workdir / "experiments" / "debug_dbg"
    assert exp.is_dir() and not (exp / "tb_logger").exists()
    assert not (exp / "visualization").exists()  # val.save_img is off (the default)
    log = _log(workdir, "debug_dbg")
    logged = [int(m) for m in re.findall(r"\[epoch \d+ iter (\d+)\]", log)]
    assert logged == list(range(1, 9)), logged
    assert re.findall(r"Validation val @ iter (\d+)", log) == ["4", "8"]
    assert "Training finished at iteration 8" in log

    # the real run's files: every byte as before, nothing archived
    assert _tree(workdir / "weights") == {**real["weights"], **{n: (workdir / "weights" / n).read_bytes()
                                                                for n in names}}
    assert {k: v for k, v in _tree(workdir / "experiments").items() if not k.startswith("debug_dbg")} \
        == real["experiments"]


# ---------------------------------------------------------------------------------------------------- --verbose


def test_verbose_shows_the_traceback_of_a_user_error(workdir: Path) -> None:
    """Without --verbose a user error is one ``error:`` line (tested throughout test_option_errors.py); with it,
    the traceback comes first, for train.py and test.py alike. Exit code 2 either way."""
    train_opt = write_options(workdir, "verb", **{"datasets.train.dataroot_gt": "data/nowhere"})
    test_opt = write_options(workdir, "verb_test", **{"train": ..., "datasets.train": ...})  # no pretrain_path
    with Child.train(workdir, "-opt", str(train_opt), "--verbose") as train_child, \
            Child([sys.executable, TEST_PY, "-opt", str(test_opt), "--verbose"], cwd=workdir) as test_child:
        results = {"train.py": train_child.finish(timeout=120), "test.py": test_child.finish(timeout=120)}
    expected = {"train.py": "datasets.train.dataroot_gt", "test.py": "path.pretrain_path"}
    for script, (rc, _out, err) in results.items():
        assert rc == 2, (script, err)
        assert "Traceback (most recent call last)" in err, (script, err)
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert errors and expected[script] in errors[0], (script, err)
        assert err.index("Traceback") < err.index(errors[0]), (script, err)


# ------------------------------------------------------------------------------------------------ exit code 1


# A network whose third training forward raises: an internal failure, not a mistake in the options. It is
# registered the way docs/extending.md says for your own code (import it before the options are loaded); the child
# then runs the real train.py as its __main__.
_FAULTY_ARCH = textwrap.dedent('''
    from framework.archs.msrresnet_arch import MSRResNet
    from framework.registry import ARCH_REGISTRY

    @ARCH_REGISTRY.register()
    class FaultyNet(MSRResNet):
        calls = 0

        def forward(self, x):
            if self.training:
                FaultyNet.calls += 1
                if FaultyNet.calls == 3:
                    raise RuntimeError("FaultyNet: deliberate failure inside forward")
            return super().forward(x)
''')


def test_an_internal_error_exits_1_with_its_traceback(workdir: Path) -> None:
    (workdir / "faulty_arch.py").write_text(_FAULTY_ARCH)
    opt = write_options(workdir, "faulty", **{"network_g.type": "FaultyNet", "logger.print_freq": 1})
    launcher = ("import runpy, sys; sys.path.insert(0, '.'); import faulty_arch; "
                f"sys.argv = [{TRAIN_PY!r}, '-opt', {str(opt)!r}, '--no-progress']; "
                f"runpy.run_path({TRAIN_PY!r}, run_name='__main__')")
    with Child([sys.executable, "-c", launcher], cwd=workdir) as child:
        rc, out, err = child.finish(timeout=120)
    assert "iter 2]" in out, (out, err)  # the run was under way: start-up checks passed, two steps done
    assert rc == 1, (rc, err)
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: FaultyNet: deliberate failure inside forward" in err
    assert not [line for line in err.splitlines() if line.startswith("error: ")], err  # not a user error


# ------------------------------------------------------------------------------------------------------ Ctrl-C
#
# The trainer installs its SIGINT/SIGTERM handler before the first step, so a loop log line (print_freq 1:
# "[epoch 0 iter 1] ...") proves it is in place. Sending SIGINT earlier would meet Python's default handling,
# which also ends in exit code 130 ("aborted") and would let the second test pass without testing anything.


def test_first_ctrl_c_finishes_the_step_saves_and_exits_0(workdir: Path) -> None:
    opt = write_options(workdir, "ctrl", **{"train.total_iter": 100000, "logger.print_freq": 1, "val": None,
                                           "logger.save_checkpoint_freq": 100000})
    with Child.train(workdir, "-opt", str(opt)) as child:
        child.wait_for("iter 1]")
        child.proc.send_signal(signal.SIGINT)
        rc, out, err = child.finish(timeout=60)
    assert rc == 0, err
    assert "SIGINT: finishing the current step and saving a checkpoint" in err
    assert "Traceback" not in err and "aborted" not in err
    match = re.search(r"SIGINT: stopped after iteration (\d+); saved (\S+\.pt)\.", out)
    assert match, out[-2000:]
    stopped_at, pt = int(match.group(1)), match.group(2)
    assert pt == f"weights/ctrl_iter_{stopped_at}.pt"
    assert sorted(p.name for p in (workdir / "weights").iterdir()) == [f"ctrl_iter_{stopped_at}.pt",
                                                                      f"ctrl_iter_{stopped_at}.pth"]
    state = _load(workdir / pt)
    assert state["kind"] == "training_state" and state["iteration"] == stopped_at
    # the saved step is the last one the log reported, and training picks up from it
    assert int(re.findall(r"\[epoch \d+ iter (\d+)\]", out)[-1]) == stopped_at
    assert train_in_process(opt, ["path.resume_path=auto", f"train.total_iter={stopped_at + 2}"]) == 0
    assert f"Resumed from {pt}: iteration {stopped_at}" in _log(workdir, "ctrl")
    assert _load(workdir / "weights" / f"ctrl_iter_{stopped_at + 2}.pt")["iteration"] == stopped_at + 2


def test_second_ctrl_c_aborts_at_once_without_saving(workdir: Path) -> None:
    # A slow step (about 0.1-0.3 s on 2 cores), so the second SIGINT comes while the first one's step runs.
    opt = write_options(workdir, "abort", **{"train.total_iter": 100000, "logger.print_freq": 1, "val": None,
                                            "logger.save_checkpoint_freq": 100000,
                                            "network_g.num_feat": 64, "network_g.num_block": 16,
                                            "datasets.train.gt_size": 32})
    with Child.train(workdir, "-opt", str(opt)) as child:
        child.wait_for("iter 1]")  # the handler is installed
        child.proc.send_signal(signal.SIGINT)
        # The handler's own line: the first SIGINT was taken by the trainer, not by default handling.
        child.wait_for("finishing the current step", stream="stderr")
        child.proc.send_signal(signal.SIGINT)
        rc, out, err = child.finish(timeout=60)
    assert rc == 130, (out[-2000:], err)
    assert "aborted" in err and "Traceback" not in err
    assert "stopped after iteration" not in out
    weights = workdir / "weights"
    assert not weights.exists() or not list(weights.iterdir())  # no checkpoint, no temp file
