"""Per-image results: one CSV table per validation set, one row per image and validation.

``experiments/<name>/per_image_<set>.csv`` (train.py, appended at each validation) and
``results/<name>/per_image_<set>.csv`` (test.py) have the same columns: ``iteration`` (empty for test.py),
``dataset``, ``image``, each metric, and ``bicubic_<metric>`` (the same image upsampled bicubically, when
scale > 1). CSV because the first thing users do with it is sort it by a metric to find the worst images,
in a spreadsheet or ``pandas.read_csv``. A resume from an earlier checkpoint drops the rows of the abandoned
continuation (iteration above the resumed one) with one atomic rewrite, so no row appears twice.
"""
from __future__ import annotations

import csv
import glob
import io
import os
import re
from typing import Dict, List, Mapping, Optional, Sequence

from .checkpoint.io import fsync_dir

HEAD = ("iteration", "dataset", "image")
PREFIX = "per_image_"
Row = Dict[str, object]


def table_path(folder: str, dataset: str) -> str:
    """The table of one validation set (its display name made safe for a file name)."""
    return os.path.join(folder, f"{PREFIX}{re.sub(r'[^A-Za-z0-9_.-]', '_', dataset)}.csv")


def image_rows(dataset: str, iteration: Optional[int], images: Sequence[Mapping[str, object]],
               bicubic: Mapping[str, Mapping[str, float]]) -> List[Row]:
    """Rows for ``images`` (``{'image': name, metric: value, ...}`` in set order) with each image's bicubic
    values (by name) beside them."""
    rows = []
    for image in images:
        base = bicubic.get(str(image["image"]), {})
        rows.append({"iteration": "" if iteration is None else iteration, "dataset": dataset, **image,
                     **{f"bicubic_{metric}": value for metric, value in base.items()}})
    return rows


def append_rows(path: str, rows: Sequence[Row]) -> None:
    """Add ``rows`` to the table (created with a header if new). A row with columns the file lacks (a metric
    added on resume) rewrites the file once with the wider header; older rows leave those cells empty."""
    if not rows:
        return
    fields = _fields(rows)
    header, old = _read(path)
    if header is None:
        _write(path, fields, rows)
    elif set(fields) <= set(header):
        with open(path, "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, header, restval="").writerows(rows)
    else:
        _write(path, header + [f for f in fields if f not in header], [*old, *rows])


def write_table(path: str, rows: Sequence[Row]) -> None:
    """A whole table at once (test.py), written atomically."""
    _write(path, _fields(rows), rows)


def drop_after(folder: str, iteration: int) -> None:
    """Resuming at ``iteration``: remove the rows of later validations from every table in ``folder``."""
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), f"{PREFIX}*.csv"))):
        header, rows = _read(path)
        kept = [row for row in rows if not str(row.get("iteration", "")).isdigit()
                or int(str(row["iteration"])) <= iteration]
        if header is not None and len(kept) < len(rows):
            _write(path, header, kept)


def _fields(rows: Sequence[Row]) -> List[str]:
    fields = list(HEAD)
    for row in rows:
        fields += [key for key in row if key not in fields]
    return fields


def _read(path: str) -> "tuple[Optional[List[str]], List[Row]]":
    if not os.path.exists(path):
        return None, []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows: List[Row] = list(reader)
        return list(reader.fieldnames or HEAD), rows


def _write(path: str, fields: Sequence[str], rows: Sequence[Row]) -> None:
    """Temp file in the same folder, fsync, rename: a kill leaves the old table or the new one."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(fields), restval="")
    writer.writeheader()
    writer.writerows(rows)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        fh.write(buffer.getvalue())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))
