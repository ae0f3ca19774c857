#!/usr/bin/env python
"""Which registered spandrel networks export to ONNX (and match PyTorch in onnxruntime) and which run under
torch.compile, each tiny (tests/spandrel_nets.py) on the CPU.

Usage (from the repository root)::

    python scripts/check_archs.py                 # both checks, every network; a markdown table
    python scripts/check_archs.py --only onnx --networks SPAN,DAT

A row says ``ok`` with the largest difference from eager PyTorch, or the first line of the failure.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from typing import List, Optional

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from framework.inference import DeployNetwork  # noqa: E402
from framework.errors import UserError  # noqa: E402
from framework.onnx_export import DEFAULT_OPSET, check_image, export_onnx, onnx_difference  # noqa: E402
from framework.registry import ARCH_REGISTRY  # noqa: E402
from framework.schema import Component  # noqa: E402
from tests.spandrel_nets import TINY, scale_of  # noqa: E402


def _network(name: str) -> DeployNetwork:
    scale = scale_of(name)
    cls = ARCH_REGISTRY.get(name)
    arg = getattr(cls, "scale_argument", None)
    kwargs = {**TINY[name], **({arg: scale} if arg else {})}
    torch.manual_seed(0)
    net = cls(**kwargs).eval()
    return DeployNetwork(net, Component(name, kwargs), scale, 3, 3, net.input_multiple, "check_archs", False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:100] if text else ''}"


def check_onnx(name: str, opset: int = DEFAULT_OPSET) -> str:
    """``ok (difference)``, or why not; a network the exporter writes only at a newer opset is tried at that."""
    network = _network(name)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"{name}.onnx")
        try:
            export_onnx(network, path, opset=opset)
            diff = onnx_difference(network, path, check_image(network))
        except UserError as exc:
            newer = re.search(r"it wrote (\d+)", str(exc))
            if newer and int(newer.group(1)) != opset:
                return check_onnx(name, int(newer.group(1)))
            return _first_line(exc)
        except Exception as exc:  # the reason is the result
            return _first_line(exc)
    at = "" if opset == DEFAULT_OPSET else f" at opset {opset}"
    return f"ok{at} ({diff:.1e})" if diff is not None and diff <= 1e-4 else f"differs{at} ({diff})"


def check_compile(name: str) -> str:
    network = _network(name)
    net = network.net.train()
    m = network.input_multiple
    size = -(-max(16, getattr(net, "input_minimum", 1)) // m) * m
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    try:
        torch.compiler.reset()
        compiled = torch.compile(net)
        torch.manual_seed(1)
        out = compiled(x.clone())
        out.mean().backward()
        torch.manual_seed(1)
        eager = net(x.clone())
        diff = (out - eager).abs().max().item()
    except Exception as exc:  # the reason is the result
        return _first_line(exc)
    return f"ok ({diff:.1e})"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("onnx", "compile"), default=None)
    parser.add_argument("--networks", default="", help="comma-separated names (default: all)")
    args = parser.parse_args(argv)
    names = [n for n in args.networks.split(",") if n] or sorted(TINY)
    checks = [c for c in ("onnx", "compile") if args.only in (None, c)]
    print(f"| network | {' | '.join(checks)} |\n|---|{'---|' * len(checks)}")
    for name in names:
        results = [check_onnx(name) if c == "onnx" else check_compile(name) for c in checks]
        print(f"| `{name}` | {' | '.join(results)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
