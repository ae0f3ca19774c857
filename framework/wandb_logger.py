"""Weights & Biases: the scalars and images the logger writes to TensorBoard, to one W&B run per experiment.

Optional (``pip install wandb``), imported only when ``logger.wandb.project`` is set. The run id is kept in
``experiments/<name>/wandb_run_id``, so a resumed run (same experiment folder) continues the same W&B run;
``logger.wandb.resume_id`` names another. Points are plotted against the ``iteration`` metric rather than
W&B's own step, which only grows: after a resume from an earlier checkpoint the new points are logged
(beside those of the abandoned continuation, which W&B cannot remove) instead of being dropped.
"""
from __future__ import annotations

import os
import uuid
from typing import Any, Mapping

import torch

from .errors import UserError
from .options import WandbOptions

RUN_ID_FILE = "wandb_run_id"


class WandbBoard:
    """One W&B run, fed like TensorBoard (rank 0 only: the logger of the other ranks has no boards)."""

    def __init__(self, options: WandbOptions, exp_dir: str, name: str, config: Mapping[str, Any]) -> None:
        import wandb

        self._wandb = wandb
        id_file = os.path.join(exp_dir, RUN_ID_FILE)
        run_id = options.resume_id or _read_id(id_file) or uuid.uuid4().hex[:8]
        try:
            # dir: the experiment folder, unless WANDB_DIR says where W&B files go.
            self.run = wandb.init(project=options.project, entity=options.entity, id=run_id, resume="allow",
                                  name=name, config=dict(config),
                                  dir=None if os.environ.get("WANDB_DIR") else exp_dir,
                                  settings=wandb.Settings(console="off"))
        except Exception as exc:  # wandb raises its own kinds: not logged in, no network, bad project
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"logger.wandb: W&B did not start ({reason}); log in with `wandb login`, run "
                            "offline with WANDB_MODE=offline (and `wandb sync` later), or remove logger.wandb") \
                from exc
        with open(id_file, "w", encoding="utf-8") as fh:
            fh.write(self.run.id + "\n")
        self.run.define_metric("iteration")
        self.run.define_metric("*", step_metric="iteration")

    def scalars(self, values: Mapping[str, float], iteration: int) -> None:
        self.run.log({"iteration": iteration, **values})

    def image(self, tag: str, img_uint8: torch.Tensor, iteration: int) -> None:
        """A uint8 (C, H, W) image."""
        pixels = img_uint8.permute(1, 2, 0).numpy()
        self.run.log({"iteration": iteration, tag: self._wandb.Image(pixels[..., 0] if pixels.shape[-1] == 1
                                                                      else pixels)})

    def close(self) -> None:
        """Finish the run and stop W&B's service process, so a later run in this process starts afresh (it reads
        WANDB_MODE and the login again)."""
        self.run.finish()
        self._wandb.teardown()


def _read_id(path: str) -> str:
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()
