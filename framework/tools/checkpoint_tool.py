"""Inspect, verify, export and compare the checkpoints the trainer writes.

    python scripts/checkpoint.py inspect weights/x_iter_1000.pt [--json]
    python scripts/checkpoint.py verify weights/*.pt weights/*.pth
    python scripts/checkpoint.py export weights/x_iter_1000.pt [-o OUT.pth] [--ema | --no-ema] [--force]
    python scripts/checkpoint.py export weights/gan_iter_1000.pt --net-d [-o OUT.pth] [--force]
    python scripts/checkpoint.py export weights/x_iter_1000.pt --onnx [-o OUT.onnx] [--opset N] [--force]
    python scripts/checkpoint.py export weights/x.pth --onnx (-opt OPTIONS.yml | --arch TYPE KEY=VALUE ...)
    python scripts/checkpoint.py diff weights/a_iter_1000.pt weights/b_iter_1000.pt

Every file is read through framework.checkpoint.safe_load (``torch.load(weights_only=True)``, zip checksums checked,
never a full unpickle), so a damaged or malicious file is refused with one ``error:`` line and exit code 2.
Exit codes: 0 success, 2 a bad file or argument, 1 an unexpected failure (with traceback).
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import torch

from ..checkpoint.errors import CheckpointError
from ..checkpoint.format import (SAFETENSORS, TRAINING_STATE, check_training_state, describe_keys, is_state_dict,
                                 weights_metadata)
from ..checkpoint.io import atomic_save, atomic_save_weights, read_safetensors
from ..checkpoint.safe_load import verify
from ..checkpoint.weights import read_weights_file
from ..inference import load_network
from .args import add_network_source, add_verbose_argument
from ..onnx_export import DEFAULT_OPSET, TOLERANCE, check_image, export_onnx, onnx_difference, require
from ..options import format_change, option_changes

# ------------------------------------------------------------------------------------------------ loading


def load_checkpoint(path: str) -> Tuple[str, Dict[str, Any]]:
    """``('training_state' | 'weights', content)`` of ``path``, loaded weights-only and checked.

    A ``.pt`` goes through :func:`framework.checkpoint.safe_load.verify` (zip checksums, kind, format version). Other
    files through :func:`read_weights_file` (``.pth``, ``.safetensors``) and are classified by content, so a
    ``.pth`` in another layout (``params_ema``, a bare state dict) can still be inspected.
    """
    if path.endswith(".pt"):
        obj = verify(path)
    else:
        obj = read_weights_file(path)
        if not isinstance(obj, dict):
            raise CheckpointError(f"{path}: expected a dict, got {type(obj).__name__}")
        if obj.get("kind") == TRAINING_STATE:
            obj = check_training_state(obj, path)
    if obj.get("kind") == TRAINING_STATE:
        return TRAINING_STATE, obj
    return "weights", obj


def load_training_state(path: str, what: str) -> Dict[str, Any]:
    kind, obj = load_checkpoint(path)
    if kind != TRAINING_STATE:
        raise CheckpointError(f"{path}: a weights file (keys: {describe_keys(obj)}), not a full training "
                              f"checkpoint (.pt); {what} needs the .pt")
    return obj


# ------------------------------------------------------------------------------------------------ measuring


def tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside nested dicts, lists and tuples."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from tensors(value)


def measure(obj: Any) -> Dict[str, Any]:
    found = list(tensors(obj))
    return {"tensors": len(found),
            "parameters": sum(t.numel() for t in found),
            "bytes": sum(t.numel() * t.element_size() for t in found),
            "dtypes": sorted({str(t.dtype).replace("torch.", "") for t in found})}


def human_bytes(n: Optional[int]) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KiB", "MiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} GiB"


def plain(value: Any) -> Any:
    """JSON-friendly copy (tuples to lists, other objects to str)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# ------------------------------------------------------------------------------------------------ inspect


def inspect_training_state(path: str, obj: Dict[str, Any]) -> Dict[str, Any]:
    model = obj["model"]
    options = obj["options"]
    train = options.get("train") or {}
    net = dict(options.get("network_g") or {})
    optim = train.get("optim_g") or {}
    weights = measure(model["networks"]["net_g"])
    ema = model["ema"].get("net_g")
    return {
        "file": path,
        "kind": TRAINING_STATE,
        "format_version": obj.get("format_version"),
        "file_bytes": os.path.getsize(path),
        "weights_bytes": weights["bytes"],
        "ema_weights_bytes": measure(ema)["bytes"] if ema is not None else None,
        "optimizer_bytes": measure(model["optimizers"])["bytes"],
        "iteration": obj["iteration"],
        "epoch": obj.get("epoch"),
        "data_position": plain(obj.get("data_position")),
        "best": plain(obj.get("best") or {}),
        "framework_version": obj.get("framework_version"),
        "torch_version": obj.get("torch_version"),
        "saved_at": obj.get("saved_at"),
        "config": {
            "name": options.get("name"),
            "scale": options.get("scale"),
            "network_g": {"type": net.pop("type", None), "args": plain(net)},
            "optim_g": {"type": optim.get("type"), "lr": optim.get("lr")},
            "total_iter": train.get("total_iter"),
            "ema_decay": train.get("ema_decay"),
        },
        "ema": ema is not None,
        "tensors": weights["tensors"],
        "parameters": weights["parameters"],
        "dtypes": weights["dtypes"],
        "discriminator": _discriminator(options, model),
    }


def _discriminator(options: Dict[str, Any], model: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """A GAN checkpoint's net_d: its type, size and optimizer (None for one-network models)."""
    if "net_d" not in model["networks"]:
        return None
    weights = measure(model["networks"]["net_d"])
    optim = (options.get("train") or {}).get("optim_d") or {}
    return {"type": (options.get("network_d") or {}).get("type"), "parameters": weights["parameters"],
            "tensors": weights["tensors"], "optim_d": {"type": optim.get("type"), "lr": optim.get("lr")}}


def inspect_weights(path: str, obj: Dict[str, Any]) -> Dict[str, Any]:
    bare = is_state_dict(obj)
    entries = {"(bare state dict)": obj} if bare else {k: v for k, v in obj.items() if isinstance(v, dict)}
    total = measure(obj)
    return {
        "file": path,
        "kind": "weights",
        "layout": "bare state dict" if bare else ("params" if list(obj) == ["params"] else "other"),
        "file_bytes": os.path.getsize(path),
        "keys": None if bare else [str(k) for k in obj],
        "entries": {str(k): {key: v for key, v in measure(v).items() if key != "dtypes"}
                    for k, v in entries.items()},
        "tensors": total["tensors"],
        "parameters": total["parameters"],
        "tensor_bytes": total["bytes"],
        "dtypes": total["dtypes"],
        "metadata": read_safetensors(path)[1] if path.endswith(SAFETENSORS) else None,
    }


def _size_line(info: Dict[str, Any]) -> str:
    return f"{human_bytes(info['file_bytes'])} ({info['file_bytes']:,} bytes)"


def format_training_state(info: Dict[str, Any]) -> List[str]:
    cfg = info["config"]
    pos = info["data_position"] or {}
    net_args = ", ".join(f"{k}={v!r}" for k, v in cfg["network_g"]["args"].items())
    best = "; ".join(f"{metric} {rec.get('value'):.4f} @ iter {rec.get('iteration')}"
                     if isinstance(rec, dict) and isinstance(rec.get("value"), (int, float))
                     else f"{metric} {rec!r}" for metric, rec in info["best"].items()) or "none"
    ema = (f"yes (train.ema_decay {cfg['ema_decay']}; the .pth export holds them)" if info["ema"]
           else f"no (train.ema_decay {cfg['ema_decay']})")
    if info["ema"] and not cfg["ema_decay"]:  # the average a schedule-free optimizer evaluates at
        ema = f"{cfg['optim_g']['type']}'s averaged weights (schedule-free; the .pth export holds them)"
    rows = [
        ("file", f"{info['file']} (full training state, format {info['format_version']})"),
        ("size", f"{_size_line(info)}; weights {human_bytes(info['weights_bytes'])}, "
                 f"EMA weights {human_bytes(info['ema_weights_bytes'])}, "
                 f"optimizer {human_bytes(info['optimizer_bytes'])}"),
        ("iteration", info["iteration"]),
        ("epoch", f"{info['epoch']} (data position: epoch {pos.get('epoch')}, {pos.get('batches_done')} "
                  f"batches done, {pos.get('samples_done')} samples)"),
        ("best", best),
        ("saved", f"{info['saved_at']} by framework {info['framework_version']}, torch {info['torch_version']}"),
        ("name", cfg["name"]),
        ("scale", cfg["scale"]),
        ("network_g", f"{cfg['network_g']['type']}({net_args})"),
        ("parameters", f"{info['parameters']:,} in {info['tensors']} tensors ({', '.join(info['dtypes'])})"),
        ("EMA weights", ema),
        ("optimizer", f"{cfg['optim_g']['type']}, lr {cfg['optim_g']['lr']}"),
        ("total_iter", cfg["total_iter"]),
    ]
    disc = info.get("discriminator")
    if disc:
        rows.insert(-1, ("network_d", f"{disc['type']}: {disc['parameters']:,} parameters in {disc['tensors']} "
                                      f"tensors; {disc['optim_d']['type']}, lr {disc['optim_d']['lr']} (export "
                                      "with --net-d)"))
    return [f"{label + ':':<13}{value}" for label, value in rows]


def format_weights(info: Dict[str, Any]) -> List[str]:
    layout = {"params": "weights, the trainer's {'params': state_dict} format",
              "bare state dict": "weights, a bare state dict",
              "other": "weights"}[info["layout"]]
    rows = [
        ("file", f"{info['file']} ({layout})"),
        ("size", f"{_size_line(info)}; tensors {human_bytes(info['tensor_bytes'])}"),
        ("keys", ", ".join(info["keys"]) if info["keys"] is not None else f"{info['tensors']} tensor names"),
        ("tensors", f"{info['tensors']}, {info['parameters']:,} parameters ({', '.join(info['dtypes']) or '-'})"),
    ]
    rows += [(key, f"{e['tensors']} tensors, {e['parameters']:,} parameters, {human_bytes(e['bytes'])}")
             for key, e in info["entries"].items() if info["layout"] != "bare state dict"]
    if info.get("metadata") is not None:
        rows[0] = ("file", f"{info['file']} (weights, safetensors: the tensors of 'params', flat)")
        rows.append(("metadata", ", ".join(f"{k}={v}" for k, v in sorted(info["metadata"].items())) or "-"))
    width = max(13, max(len(label) for label, _ in rows) + 2)
    return [f"{label + ':':<{width}}{value}" for label, value in rows]


def spandrel_detection(path: str) -> Dict[str, Any]:
    """What spandrel (chaiNNer's, ComfyUI's loader) reads in a weights file: architecture, scale, parameters, and
    the registered type and arguments ``network_g: {type: auto}`` would train."""
    from ..errors import UserError
    from ..published import detect

    try:
        found = detect(path, option="inspect")
    except UserError as exc:
        return {"detected": None, "reason": str(exc).split(": ", 2)[-1]}
    return {"detected": found.describe(), "architecture": found.architecture, "scale": found.scale,
            "parameters": found.parameters, "type": found.type, "arguments": plain(found.arguments)}


def cmd_inspect(args: argparse.Namespace) -> int:
    try:
        kind, obj = load_checkpoint(args.file)
    except CheckpointError:
        if args.file.endswith(".pt"):
            raise
        kind, obj = "published", {}  # a format or layout only spandrel reads (.safetensors, .ckpt, ...)
    if kind == TRAINING_STATE:
        info = inspect_training_state(args.file, obj)
        lines = format_training_state(info)
    else:
        info = inspect_weights(args.file, obj) if obj else {"file": args.file, "kind": "weights",
                                                            "file_bytes": os.path.getsize(args.file)}
        lines = format_weights(info) if obj else [f"file:        {args.file}"]
        info["spandrel"] = found = spandrel_detection(args.file)
        lines.append(f"spandrel:    {found['detected'] or 'not recognised (' + found['reason'] + ')'}")
        if found.get("type"):
            arguments = ", ".join(f"{k}={v!r}" for k, v in found["arguments"].items())
            lines.append(f"trains as:   network_g: {{type: auto}} = {found['type']}({arguments})")
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print("\n".join(lines))
    return 0


# ------------------------------------------------------------------------------------------------ verify


def cmd_verify(args: argparse.Namespace) -> int:
    bad = []
    for path in args.files:
        try:
            verify(path)
        except CheckpointError as exc:
            reason = str(exc)
            if reason.startswith(f"{path}: "):
                reason = reason[len(path) + 2:]
            print(f"BAD {path}: {reason}", flush=True)
            bad.append(path)
        else:
            print(f"ok  {path}", flush=True)
    if bad:
        raise CheckpointError(f"{len(bad)} of {len(args.files)} file(s) failed verification")
    return 0


# ------------------------------------------------------------------------------------------------ export


def cmd_export(args: argparse.Namespace) -> int:
    if args.onnx and args.net_d:
        raise CheckpointError("--net-d: not with --onnx (the ONNX export is the deployable generator)")
    if args.onnx:
        return export_onnx_file(args)
    for flag, value in (("-opt", args.opt), ("--arch", args.arch), ("--opset", args.opset),
                        ("--check-image", args.check_image)):
        if value is not None:
            raise CheckpointError(f"{flag}: only for --onnx (a .pth export takes the network's weights from the .pt)")
    obj = load_training_state(args.file, "export")
    if args.net_d:
        return export_discriminator(args, obj)
    ema = obj["model"]["ema"].get("net_g")
    if args.ema and ema is None:
        raise CheckpointError(f"{args.file}: --ema: the checkpoint has no EMA weights (train.ema_decay was "
                              f"{(obj['options'].get('train') or {}).get('ema_decay')}); drop --ema to export net_g")
    use_ema = ema is not None and args.ema is not False
    stem = os.path.splitext(args.file)[0]
    out = output_path(args, f"{stem}_{'ema' if use_ema else 'export'}.pth", (".pth", SAFETENSORS),
                      "(a .pt is read as a full training state)")
    state = ema if use_ema else obj["model"]["networks"]["net_g"]
    atomic_save_weights(out, state, weights_metadata(obj["options"]))
    verify(out)
    size = measure(state)
    print(f"wrote {out}: {'EMA weights (net_g_ema)' if use_ema else 'network weights (net_g)'} of iteration "
          f"{obj['iteration']}, {size['tensors']} tensors, {size['parameters']:,} parameters, "
          f"{human_bytes(os.path.getsize(out))}")
    return 0


def export_discriminator(args: argparse.Namespace, obj: Dict[str, Any]) -> int:
    """``export --net-d``: a GAN checkpoint's discriminator as ``{'params': net_d}`` (BasicSR's net_d_*.pth), to
    continue a GAN stage in a new run (``path.pretrain_path_d``)."""
    if args.ema:
        raise CheckpointError("--ema: the discriminator has no EMA weights; drop --ema with --net-d")
    state = obj["model"]["networks"].get("net_d")
    if state is None:
        raise CheckpointError(f"{args.file}: --net-d: the checkpoint has no discriminator (model_type "
                              f"{obj['options'].get('model_type')}; networks: {', '.join(obj['model']['networks'])})")
    out = output_path(args, f"{os.path.splitext(args.file)[0]}_net_d.pth", ".pth",
                      "(a .pt is read as a full training state)")
    atomic_save({"params": dict(state)}, out)
    verify(out)
    size = measure(state)
    print(f"wrote {out}: discriminator weights (net_d) of iteration {obj['iteration']}, {size['tensors']} tensors, "
          f"{size['parameters']:,} parameters, {human_bytes(os.path.getsize(out))}")
    return 0


def output_path(args: argparse.Namespace, default: str, ext: Union[str, Tuple[str, ...]], why: str = "") -> str:
    """``-o`` (or ``default``), checked: right extension (or one of them), not the input, not a folder, not an
    existing file without ``--force``, in an existing folder."""
    out = args.output or default
    if not out.endswith(ext):
        allowed = ext if isinstance(ext, str) else " or ".join(ext)
        raise CheckpointError(f"-o {out}: the output must end with {allowed}" + (f" {why}" if why else ""))
    if os.path.exists(out) and os.path.samefile(out, args.file):
        raise CheckpointError(f"-o {out}: that is the input checkpoint; choose another name")
    if os.path.isdir(out):
        raise CheckpointError(f"-o {out}: is a folder; give a file name")
    if os.path.exists(out) and not args.force:
        raise CheckpointError(f"{out}: exists; pass --force to overwrite it, or choose another name with -o")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise CheckpointError(f"-o {out}: folder {os.path.dirname(out)} does not exist")
    return out


def export_onnx_file(args: argparse.Namespace) -> int:
    """``export --onnx``: the network of a .pt (its saved options) or a .pth (with -opt or --arch) as ONNX,
    checked in onnxruntime against PyTorch."""
    require("onnx")  # before any work: a missing extra is the first thing to hear about
    require("onnxscript")
    if args.ema is False:
        param_key: Optional[str] = "params"
    elif args.ema:
        param_key = "params_ema"
    else:
        param_key = None
    network = load_network(args.file, options_file=args.opt, arch=args.arch or (), param_key=param_key,
                           weights_option="FILE", key_option="--ema / --no-ema")
    if args.ema and not network.ema:
        raise CheckpointError(f"{args.file}: --ema: the file has no EMA weights (params_ema); drop --ema")
    stem = os.path.splitext(args.file)[0]
    default = f"{stem}_{'ema' if network.ema else 'export'}.onnx" if args.file.endswith(".pt") else f"{stem}.onnx"
    out = output_path(args, default, ".onnx")
    image = check_image(network, args.check_image)
    opset = args.opset if args.opset is not None else DEFAULT_OPSET
    export_onnx(network, out, opset)
    diff = onnx_difference(network, out, image)
    what = (f"{network.describe()}, {'EMA' if network.ema else 'network'} weights, opset {opset}, dynamic "
            f"batch/height/width")
    if diff is None:
        print(f"wrote {out}: {what}; not checked: onnxruntime is not installed (pip install 'sr-framework[onnx]')")
        return 0
    where = f"{image.shape[-1]}x{image.shape[-2]} {'image ' + args.check_image if args.check_image else 'test image'}"
    if not diff <= TOLERANCE:
        os.remove(out)
        raise RuntimeError(f"{out}: onnxruntime differs from PyTorch by {diff:.3g} (> {TOLERANCE}) on the {where}; "
                           "the file was removed. Please report this with the network's options")
    print(f"wrote {out}: {what}; onnxruntime equals PyTorch on the {where} (max |difference| {diff:.2g})")
    return 0


# ------------------------------------------------------------------------------------------------ diff


def cmd_diff(args: argparse.Namespace) -> int:
    a = load_training_state(args.a, "diff")
    b = load_training_state(args.b, "diff")
    print(f"iteration: {a['iteration']} -> {b['iteration']}")
    print(f"epoch: {a.get('epoch')} -> {b.get('epoch')}")
    changes = option_changes(a["options"], b["options"])
    for key, va, vb in changes:
        print(format_change(key, va, vb))
    if not changes:
        print("options: identical")
    return 0


# ------------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_verbose_argument(common)
    parser = argparse.ArgumentParser(prog="checkpoint.py", parents=[common],
                                     description="Inspect, verify, export and compare the trainer's checkpoints "
                                                 "(.pt full training state, .pth {'params': weights}).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("inspect", parents=[common], help="what a .pt or .pth holds")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text lines")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("verify", parents=[common], help="check files load safely and completely")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("export", parents=[common],
                       help="write {'params': weights} from a full .pt, or with --onnx an ONNX model")
    p.add_argument("file", metavar="FILE", help="a .pt (or, with --onnx, a .pth)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file (default: <stem>_ema.pth with EMA weights, else <stem>_export.pth; with --onnx "
                        "the same names ending in .onnx for a .pt, <stem>.onnx for a .pth)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="export the EMA weights (default: when present, like the trainer's .pth; of a .pth: "
                        "params_ema); --no-ema: the raw net_g (of a .pth: params)")
    p.add_argument("--net-d", action="store_true",
                   help="export the discriminator of a GAN checkpoint instead (default OUT: <stem>_net_d.pth), for "
                        "path.pretrain_path_d")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.add_argument("--onnx", action="store_true",
                   help="write an ONNX model (dynamic batch, height, width) and check it in onnxruntime against "
                        "PyTorch; needs pip install 'sr-framework[onnx]'")
    add_network_source(p, when="with --onnx: ", default="; without either, a .pt's saved options (a .pth needs "
                                                        "one)")
    p.add_argument("--opset", type=int, metavar="N", help=f"with --onnx: ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--check-image", metavar="IMG",
                   help="with --onnx: check on this image instead of a generated 56x40 one")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("diff", parents=[common], help="options that differ between two .pt checkpoints")
    p.add_argument("a", metavar="A.pt")
    p.add_argument("b", metavar="B.pt")
    p.set_defaults(func=cmd_diff)
    return parser


def main(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


