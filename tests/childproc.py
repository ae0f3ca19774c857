"""A child process whose output is read with deadlines: no test blocks forever on a stuck child.

Two threads drain stdout and stderr line by line as the child writes them (so a full pipe can never stall
the child either); every wait has a timeout and fails with the output seen so far. Leaving the ``with``
block kills the child if it is still running.

    with Child([sys.executable, TRAIN_PY, "-opt", opt], cwd=work) as child:
        child.wait_for("iter 1]")                      # stdout, 60 s
        child.proc.send_signal(signal.SIGINT)
        child.wait_for("finishing", stream="stderr")
        rc, out, err = child.finish(timeout=60)
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
TRAIN_PY = str(REPO / "train.py")
TEST_PY = str(REPO / "test.py")


class Child:
    def __init__(self, args: Sequence[str], cwd: os.PathLike, env: Optional[Dict[str, str]] = None,
                 *, own_group: bool = False, preexec_fn: Optional[Callable[[], None]] = None) -> None:
        """``own_group``: the child leads a process group of its own, and killing it kills the group (a
        launcher such as torchrun, whose workers must not outlive a failed test). ``preexec_fn``: run in the
        child before it executes ``args`` (e.g. to drop a capability)."""
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.own_group = own_group
        self.proc = subprocess.Popen(list(args), cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1, start_new_session=own_group,
                                     preexec_fn=preexec_fn)
        self._lines: Dict[str, List[str]] = {"stdout": [], "stderr": []}
        self._closed: Dict[str, bool] = {"stdout": False, "stderr": False}
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._drain, args=(name, getattr(self.proc, name)), daemon=True)
                         for name in ("stdout", "stderr")]
        for thread in self._threads:
            thread.start()

    @classmethod
    def train(cls, cwd: os.PathLike, *args: str, env: Optional[Dict[str, str]] = None) -> "Child":
        """``python train.py ARGS --no-progress`` in ``cwd``."""
        return cls([sys.executable, TRAIN_PY, *args, "--no-progress"], cwd=cwd, env=env)

    def _drain(self, name: str, stream) -> None:
        try:
            for line in stream:
                with self._cond:
                    self._lines[name].append(line)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._closed[name] = True
                self._cond.notify_all()

    def output(self, stream: str = "stdout") -> str:
        with self._cond:
            return "".join(self._lines[stream])

    def _tail(self) -> str:
        return f"\n--- stdout:\n{self.output('stdout')[-3000:]}\n--- stderr:\n{self.output('stderr')[-3000:]}"

    def wait_for(self, text: str, stream: str = "stdout", timeout: float = 60) -> str:
        """The first line of ``stream`` that contains ``text``; fails if the child closes the stream first or
        nothing comes within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                lines = self._lines[stream]
                for line in lines[seen:]:
                    if text in line:
                        return line
                seen = len(lines)
                if self._closed[stream]:
                    raise AssertionError(f"the child closed its {stream} (exit code {self.proc.poll()}) before "
                                         f"printing {text!r}{self._tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{text!r} did not appear on the child's {stream} within {timeout} s"
                                         f"{self._tail()}")
                self._cond.wait(left)

    def finish(self, timeout: float = 60) -> Tuple[int, str, str]:
        """Wait for the child to exit (killing it after ``timeout`` s, which fails the test);
        returns (exit code, all of stdout, all of stderr)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the child did not exit within {timeout} s; killed{self._tail()}") from None
        for thread in self._threads:
            thread.join(timeout=10)  # EOF follows the exit, unless a grandchild still holds the pipe
        return rc, self.output("stdout"), self.output("stderr")

    def kill(self) -> None:
        if self.own_group:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group outlives its leader: kill it even so
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
