"""Pack a folder of images (or a GT/LQ pair of folders) into LMDB, in BasicSR's layout.

Usage (from the repository root, after ``pip install -e .``)::

    python scripts/create_lmdb.py --input datasets/DIV2K/HR_sub --output datasets/DIV2K/HR_sub.lmdb
    python scripts/create_lmdb.py --input HR_sub --output HR_sub.lmdb --lq LR_x4_sub --lq-output LR_x4_sub.lmdb

Then, in the options: ``io_backend: {type: lmdb}``, ``dataroot_gt: .../HR_sub.lmdb`` (and ``dataroot_lq``).
One file system object instead of hundreds of thousands of small files: much faster on network and shared
file systems. Each value is the image file's bytes, unchanged (so pixels are identical to the folder's),
under the key ``<name without extension>``; ``meta_info.txt`` lists ``<name> (<h>,<w>,<c>) -1`` (``-1``: the
file's own compression, not re-encoded). LMDBs made by BasicSR's ``create_lmdb.py`` load as well.

The LMDB is built in ``<output>.partial`` and renamed to ``<output>`` when complete: an interrupted run leaves
no LMDB under the real name, and rerunning the same command continues where it stopped. An existing
``<output>`` is never overwritten. Every image is decoded once on the way (in ``--workers`` processes): an
unreadable file is reported, and the LMDB is not completed until it is fixed.
"""
from __future__ import annotations

import argparse
import functools
import os
from typing import Dict, List, Optional, Tuple

from tqdm import tqdm

from ..data.backends import META_INFO_NAME
from ..data.image_io import decode_bytes, images_by_stem, write_bytes_atomic
from ..errors import UserError
from .args import add_verbose_argument
from .parallel import check_output_folder, default_workers, run_jobs

PARTIAL = ".partial"
PROGRESS = "meta_info.partial.txt"  # meta lines of the committed entries, for a resumed run
COMMIT_BYTES = 256 << 20
COMMIT_IMAGES = 2000


def meta_line(name: str, shape: Tuple[int, ...]) -> str:
    channels, height, width = shape
    return f"{name} ({height},{width},{channels}) -1"


def read_entry(item: Tuple[str, str], folder: str) -> Tuple[str, str, Optional[bytes], str]:
    """(key, meta line, file bytes, problem) of one image; decoding checks it and gives its shape."""
    key, name = item
    path = os.path.join(folder, name)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        img = decode_bytes(data, path, channels="stored")
    except OSError as exc:
        return key, "", None, f"{path}: cannot read ({exc.strerror or exc})"
    except UserError as exc:
        return key, "", None, str(exc)
    return key, meta_line(name, tuple(img.shape)), data, ""


def _map_size(folder: str, names: List[str]) -> int:
    """Room for every file, in 4 KiB pages plus a page of overhead each, and a margin (LMDB's map size is an
    upper bound of a sparse file, not space taken)."""
    pages = sum(-(-os.path.getsize(os.path.join(folder, n)) // 4096) + 1 for n in names)
    return int(pages * 4096 * 1.2) + (64 << 20)


def _committed(partial: str) -> Dict[str, str]:
    """{key: meta line} of entries an earlier run committed (and recorded)."""
    done: Dict[str, str] = {}
    path = os.path.join(partial, PROGRESS)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                key, _, meta = line.rstrip("\n").partition("\t")
                if meta:
                    done[key] = meta
    return done


def pack_folder(folder: str, output: str, workers: int, desc: str = "lmdb") -> List[str]:
    """Write ``output`` (see the module doc); returns the problems (unreadable images), empty on success."""
    import lmdb

    files = images_by_stem(folder)
    if not files:
        raise UserError(f"'{folder}': no PNG/JPEG images")
    partial = output.rstrip("/" + os.sep) + PARTIAL
    os.makedirs(partial, exist_ok=True)
    done = _committed(partial)
    todo = [(key, name) for key, name in files.items() if key not in done]
    env = lmdb.open(partial, map_size=_map_size(folder, list(files.values())), subdir=True, map_async=False)
    problems: List[str] = []
    batch: List[Tuple[str, str, bytes]] = []
    size = 0

    def commit() -> None:
        nonlocal batch, size
        if not batch:
            return
        with env.begin(write=True) as txn:
            for key, _meta, data in batch:
                txn.put(key.encode("utf-8"), data)
        with open(os.path.join(partial, PROGRESS), "a", encoding="utf-8") as fh:  # after the commit
            fh.writelines(f"{key}\t{meta}\n" for key, meta, _ in batch)
            fh.flush()
            os.fsync(fh.fileno())
        done.update((key, meta) for key, meta, _ in batch)
        batch, size = [], 0

    try:
        for key, meta, data, problem in run_jobs(functools.partial(read_entry, folder=folder), todo, workers,
                                                 desc, ordered=True):
            if problem:
                problems.append(problem)
                tqdm.write(problem)
                continue
            assert data is not None
            batch.append((key, meta, data))
            size += len(data)
            if size >= COMMIT_BYTES or len(batch) >= COMMIT_IMAGES:
                commit()
        commit()
        env.sync()
    finally:
        env.close()
    if problems:
        return problems
    write_bytes_atomic("".join(done[key] + "\n" for key in files).encode("utf-8"),
                       os.path.join(partial, META_INFO_NAME))
    os.unlink(os.path.join(partial, PROGRESS))
    os.replace(partial, output)
    return []


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="create_lmdb.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="folder of (GT) images")
    parser.add_argument("--output", required=True, help="the LMDB folder to create (name it <something>.lmdb)")
    parser.add_argument("--lq", help="folder of the LQ images (same names as the GT images)")
    parser.add_argument("--lq-output", help="the LQ LMDB folder to create")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="processes reading and checking images (default: one per core, %(default)s)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    try:
        import lmdb  # noqa: F401
    except ImportError as exc:
        raise UserError("create_lmdb.py needs the lmdb package: pip install lmdb") from exc
    if bool(args.lq) != bool(args.lq_output):
        raise UserError("--lq and --lq-output go together (the LQ folder and its LMDB)")
    jobs = [(args.input, args.output, "--input", "--output")]
    if args.lq:
        jobs.append((args.lq, args.lq_output, "--lq", "--lq-output"))
    for folder, output, flag_in, flag_out in jobs:
        if not os.path.isdir(folder):
            raise UserError(f"{flag_in}: folder '{folder}' does not exist")
        if os.path.exists(output):
            raise UserError(f"{flag_out}: '{output}' already exists; remove it or choose another name "
                            "(an LMDB is never overwritten)")
        problem = check_output_folder(folder, output, flag_out)
        if problem:
            raise UserError(problem)
    if args.lq:
        gt, lq = set(images_by_stem(args.input)), set(images_by_stem(args.lq))
        if gt != lq:
            odd = sorted(gt ^ lq)
            raise UserError(f"--lq: {len(odd)} name(s) in only one of '{args.input}' and '{args.lq}': "
                            f"{', '.join(odd[:5])}; a GT/LQ pair of LMDBs needs the same names")
    failed = False
    for folder, output, _flag_in, _flag_out in jobs:
        problems = pack_folder(folder, output, args.workers, desc=os.path.basename(output.rstrip("/")))
        if problems:
            failed = True
            print(f"{output}: {len(problems)} image(s) could not be read (above); fix or remove them and rerun "
                  f"the same command to finish (the finished part in {output}{PARTIAL} is kept)")
        else:
            print(f"wrote {output} ({len(images_by_stem(folder))} images)")
    return UserError.exit_code if failed else 0

