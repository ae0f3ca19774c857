"""scripts/slurm_train.sh composes one torchrun per node with a rendezvous on the first node (srun and scontrol
are stand-ins that record their arguments: there is no Slurm here); both scripts refuse a missing argument.
scripts/dist_train.sh itself runs for real in tests/test_distributed.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .tinyrun import REPO

SCRIPTS = REPO / "scripts"


def _fake(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)


def test_slurm_script_starts_one_torchrun_per_node_meeting_on_the_first(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "scontrol", 'printf "gpu-a17\\ngpu-a18\\n"')
    _fake(bin_dir, "srun", f'printf "%s\\n" "$@" > {tmp_path}/srun_args')
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "gpu-a[17-18]",
           "SLURM_JOB_ID": "4242", "SLURM_SUBMIT_DIR": str(REPO), "GPUS_PER_NODE": "4",
           "MAX_RESTARTS": "1", "PORT": "29811", "PYTHON": "python3", "SRUN_ARGS": "--partition=gpu"}
    result = subprocess.run(["bash", str(SCRIPTS / "slurm_train.sh"), "x.yml", "--no-progress"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "srun_args").read_text().split("\n")
    assert args[:4] == ["--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--partition=gpu"]
    assert args[4:7] == ["bash", f"{REPO}/scripts/torchrun.sh", "4"]  # per node: torchrun with 4 processes
    torchrun = args[7:]
    for expected in ("--nnodes=2", "--rdzv_backend=c10d", "--rdzv_endpoint=gpu-a17:29811",
                     "--rdzv_id=4242", "--max-restarts=1", f"{REPO}/train.py", "--auto-resume", "--no-progress"):
        assert expected in torchrun, (expected, torchrun)
    assert torchrun[torchrun.index("-opt") + 1] == "x.yml"


def test_scripts_without_their_arguments_say_how_to_call_them() -> None:
    for script, env in (("dist_train.sh", {}), ("slurm_train.sh", {"SLURM_JOB_NODELIST": "n1"}), ("torchrun.sh", {})):
        result = subprocess.run(["bash", str(SCRIPTS / script)], env={**os.environ, **env}, capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 2 and "usage:" in result.stderr, (script, result.stderr)
    outside = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    result = subprocess.run(["bash", str(SCRIPTS / "slurm_train.sh"), "x.yml"], env=outside, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode != 0 and "run under sbatch or salloc" in result.stderr


@pytest.mark.parametrize("torchrun_rc,markers,expected", [
    (0, "", 0),                                            # finished: torchrun's own 0
    (1, "attempt0.rank0 attempt0.rank1", 0),               # torchrun's 1 after a signal, both ranks stopped cleanly
    (1, "attempt0.rank0", 1),                              # one rank failed
    (1, "attempt0.rank0 attempt0.rank1 attempt1.rank0", 1),  # clean before a restart, then rank 1 failed
    (137, "", 137),                                        # torchrun killed, nothing clean
])
def test_torchrun_wrapper_exit_code(tmp_path: Path, torchrun_rc: int, markers: str, expected: int) -> None:
    """scripts/torchrun.sh with a stand-in for ``python -m torch.distributed.run`` that leaves the given clean-exit
    markers (as train.py's ranks do) and exits with the given code; the real thing: tests/test_distributed.py."""
    _fake(tmp_path, "python", f'if [ "$1" = "-c" ]; then exec {sys.executable} "$@"; fi\n'
                              f'printf "%s\\n" "$@" > {tmp_path}/args\n'
                              'for m in $FAKE_MARKERS; do echo clean > "$FRAMEWORK_CLEAN_EXIT_DIR/$m"; done\n'
                              f"exit {torchrun_rc}")
    env = {**os.environ, "PYTHON": str(tmp_path / "python"), "FAKE_MARKERS": markers, "TMPDIR": str(tmp_path)}
    result = subprocess.run(["bash", str(SCRIPTS / "torchrun.sh"), "2", "--standalone", "train.py", "-opt", "x.yml"],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == expected, result.stderr
    assert (tmp_path / "args").read_text().split() == ["-m", "torch.distributed.run", "--nproc_per_node=2",
                                                       "--standalone", "train.py", "-opt", "x.yml"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("torchrun_exit.")] == []  # markers removed
