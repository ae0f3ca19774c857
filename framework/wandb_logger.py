"""Weights & Biases: the scalars and images the logger writes to TensorBoard, to one W&B run per experiment.

Optional (``pip install wandb``), imported only when ``logger.wandb.project`` is set. The run id is kept in
``experiments/<name>/wandb_run_id``, so a resumed run (same experiment folder) continues the same W&B run;
``logger.wandb.resume_id`` names another. Points are plotted against the ``iteration`` metric rather than
W&B's own step, which only grows: after a resume from an earlier checkpoint the new points are logged
(beside those of the abandoned continuation, which W&B cannot remove online) instead of being dropped.

Offline (``WANDB_MODE=offline``), W&B writes one ``offline-run-<time>-<id>`` folder per process start, and
``wandb sync`` of two folders with one run id keeps only the last one uploaded. So a resumed offline run
carries the earlier folder's rows up to the resumed iteration (scalars and images) into its own folder, and
moves the earlier folder into ``<wandb dir>/carried/``, out of ``wandb sync``'s reach: the run's one folder
holds the whole history, without the abandoned continuation.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import uuid
from typing import Any, Dict, Iterator, List, Mapping, Optional

import torch

from .data.image_io import decode_file
from .errors import UserError, first_line
from .options import WandbOptions

RUN_ID_FILE = "wandb_run_id"
CARRIED_FOLDER = "carried"


class WandbBoard:
    """One W&B run, fed like TensorBoard (rank 0 only: the logger of the other ranks has no boards)."""

    def __init__(self, options: WandbOptions, exp_dir: str, name: str, config: Mapping[str, Any],
                 resume_iter: int = 0) -> None:
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
            reason = first_line(exc)
            raise UserError(f"logger.wandb: W&B did not start ({reason}); log in with `wandb login`, run "
                            "offline with WANDB_MODE=offline (and `wandb sync` later), or remove logger.wandb") \
                from exc
        with open(id_file, "w", encoding="utf-8") as fh:
            fh.write(self.run.id + "\n")
        self.run.define_metric("iteration")
        self.run.define_metric("*", step_metric="iteration")
        if self.run.offline and resume_iter:
            self._carry_earlier_folder(resume_iter)

    def scalars(self, values: Mapping[str, float], iteration: int) -> None:
        self.run.log({"iteration": iteration, **values})

    def image(self, tag: str, img_uint8: torch.Tensor, iteration: int) -> None:
        """A uint8 (C, H, W) image."""
        pixels = img_uint8.permute(1, 2, 0).numpy()
        self.run.log({"iteration": iteration, tag: self._wandb.Image(pixels[..., 0] if pixels.shape[-1] == 1
                                                                      else pixels)})

    def _carry_earlier_folder(self, resume_iter: int) -> None:
        """Log the latest earlier offline folder's rows up to ``resume_iter`` again into this run's folder,
        then move that folder into ``carried/`` (kept, but no longer one ``wandb sync`` would upload)."""
        earlier = earlier_offline_folder(self.run.settings.sync_dir, self.run.id)
        if earlier is None:
            return
        log_file = os.path.join(earlier, f"run-{self.run.id}.wandb")
        for row in history_rows(read_records(log_file)):
            iteration = row.get("iteration")
            if not isinstance(iteration, int) or iteration > resume_iter:
                continue
            self._relog(row, iteration, os.path.join(earlier, "files"))
        carried = os.path.join(os.path.dirname(earlier), CARRIED_FOLDER)
        os.makedirs(carried, exist_ok=True)
        shutil.move(earlier, os.path.join(carried, os.path.basename(earlier)))

    def _relog(self, row: Mapping[str, Any], iteration: int, files: str) -> None:
        scalars = {key: value for key, value in row.items()
                   if key != "iteration" and not key.startswith("_") and isinstance(value, (int, float))}
        if scalars:
            self.scalars(scalars, iteration)
        for key, value in row.items():
            if isinstance(value, dict) and value.get("_type") == "image-file":
                self.image(key, decode_file(os.path.join(files, value["path"]), "stored"), iteration)

    def close(self) -> None:
        """Finish the run and stop W&B's service process, so a later run in this process starts afresh (it reads
        WANDB_MODE and the login again)."""
        self.run.finish()
        self._wandb.teardown()


def earlier_offline_folder(sync_dir: str, run_id: str) -> Optional[str]:
    """The newest other offline folder of ``run_id`` beside ``sync_dir`` that holds the run's log. W&B names
    them ``offline-run-<YYYYmmdd_HHMMSS>-<id>``, with ``-<n>`` added for a second start within the second."""
    parent, own = os.path.split(os.path.normpath(sync_dir))
    pattern = re.compile(rf"offline-run-(\d{{8}}_\d{{6}})-{re.escape(run_id)}(?:-(\d+))?")
    found = []
    for name in os.listdir(parent):
        match = pattern.fullmatch(name)
        if match and name != own and os.path.isfile(os.path.join(parent, name, f"run-{run_id}.wandb")):
            found.append(((match.group(1), int(match.group(2) or 0)), name))
    return os.path.join(parent, max(found)[1]) if found else None


def read_records(path: str) -> List[Any]:
    """The records of a ``.wandb`` file, parsed with W&B's own protobuf classes. The file is a LevelDB-style
    log: a 7-byte header, then 32 KiB blocks of chunks, each crc32 (4) + length (2, little-endian) + type
    (1: full, 2: first, 3: middle, 4: last). A log cut short (a killed process) ends at its last whole
    record."""
    from wandb.proto import wandb_internal_pb2

    with open(path, "rb") as fh:
        data = fh.read()
    records: List[Any] = []
    for payload in _chunks(data):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]  # generated protobuf class
        record.ParseFromString(payload)
        records.append(record)
    return records


def _chunks(data: bytes, block: int = 32768) -> Iterator[bytes]:
    if data[:4] != b":W&B":
        return
    pending, pos = b"", 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        if pos + 7 + length > len(data):
            return
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            yield pending


def history_rows(records: List[Any]) -> List[Dict[str, Any]]:
    """Each logged row: ``{key: value}``; an image's fields under ``{tag: {'path': ..., 'width': ..., ...}}``."""
    rows = []
    for record in records:
        if record.WhichOneof("record_type") != "history":
            continue
        row: Dict[str, Any] = {}
        for item in record.history.item:
            path = [item.key] if item.key else list(item.nested_key)
            if len(path) == 1:
                row[path[0]] = json.loads(item.value_json)
            else:
                row.setdefault(path[0], {})[path[-1]] = json.loads(item.value_json)
        rows.append(row)
    return rows


def _read_id(path: str) -> str:
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()
