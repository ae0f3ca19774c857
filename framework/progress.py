"""Where a run is (iteration, epoch, position in the epoch) and the best validation values so far.

Both are small stateful parts with ``state_dict``/``load_state_dict`` that the checkpoint manager collects,
beside the model's state and the RNG, into one training state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping


@dataclass
class TrainingProgress:
    """The loop's position: optimizer steps done, and the epoch and batches done in it."""

    batch_size: int
    batches_per_epoch: int = 0
    world_size: int = 1  # processes, each with its own shard and batch of batch_size
    iteration: int = 0
    epoch: int = 0
    batches_done: int = 0

    def step(self) -> None:
        self.iteration += 1
        self.batches_done += 1

    def next_epoch(self) -> None:
        self.epoch += 1
        self.batches_done = 0

    def state_dict(self) -> Dict[str, Any]:
        """Iteration, epoch and data position; an epoch that just ended is saved as the next one's start."""
        epoch, done = self.epoch, self.batches_done
        if self.batches_per_epoch and done >= self.batches_per_epoch:
            epoch, done = epoch + 1, 0
        return {"iteration": self.iteration, "epoch": epoch,
                "data_position": {"epoch": epoch, "batches_done": done, "samples_done": done * self.batch_size,
                                  "world_size": self.world_size,
                                  "global_samples_done": done * self.batch_size * self.world_size}}

    def load_state_dict(self, state: Mapping[str, Any]) -> List[str]:
        """Restore; returns warnings (a changed batch size cannot resume mid-batch, another number of
        processes continues from the same global position in another order)."""
        position = state["data_position"]
        self.iteration = int(state["iteration"])
        self.epoch = int(position["epoch"])
        samples = int(position.get("samples_done", position["batches_done"] * self.batch_size))
        notes = []
        saved_world = int(position.get("world_size", 1))
        if saved_world != self.world_size:
            global_done = int(position.get("global_samples_done", samples * saved_world))
            samples = global_done // self.world_size
            notes.append(f"the checkpoint was written by {saved_world} process(es), this run has {self.world_size}: "
                         f"training continues from the same global sample position ({global_done} samples into "
                         f"epoch {self.epoch}), but the data order from here on differs from an uninterrupted "
                         f"{saved_world}-process run")
        self.batches_done = samples // self.batch_size
        if samples % self.batch_size:
            notes.append(f"batch size changed since the checkpoint: resuming at sample {samples} of the epoch "
                         f"rounds down to batch {self.batches_done} ({samples % self.batch_size} samples repeated)")
        return notes

    @property
    def samples_done(self) -> int:
        return self.batches_done * self.batch_size


@dataclass
class BestRecord:
    """The best value of each metric and when it was reached; the first metric decides the best model."""

    values: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def update(self, metric: str, value: float, iteration: int, higher_is_better: bool = True) -> bool:
        old = self.values.get(metric)
        better = old is None or (value > old["value"] if higher_is_better else value < old["value"])
        if better:
            self.values[metric] = {"value": float(value), "iteration": int(iteration)}
        return better

    def state_dict(self) -> Dict[str, Dict[str, float]]:
        return {k: dict(v) for k, v in self.values.items()}

    def load_state_dict(self, state: Mapping[str, Mapping[str, float]]) -> None:
        self.values = {k: dict(v) for k, v in state.items()}
