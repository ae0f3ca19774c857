"""ONNX export of a deploy network, with dynamic batch, height and width, checked in onnxruntime.

``onnx``, ``onnxscript`` (torch's exporter) and ``onnxruntime`` (the check) are the optional ``onnx`` extra:
``pip install 'sr-framework[onnx]'``. The model takes and returns float32 NCHW images in [0, 1] (RGB for
3-channel networks) like the PyTorch network, without clamping.
"""
from __future__ import annotations

import importlib
import logging
import os
import re
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import numpy as np
import torch

from .data.example_data import render_image
from .data.image_io import read_image
from .errors import UserError
from .inference import DeployNetwork, luma
from .version import __version__

DEFAULT_OPSET = 17  # read by onnxruntime >= 1.13 and TensorRT >= 8.6; torch writes 18 natively and converts
TOLERANCE = 1e-4  # onnxruntime vs PyTorch, max absolute difference on the check image


def require(module: str) -> Any:
    """Import an optional ONNX package, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError(f"ONNX export needs the package '{module}': pip install 'sr-framework[onnx]' (or pip "
                        "install onnx onnxscript onnxruntime)") from exc


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch's exporter and onnxscript log the opset conversion as warnings; the result is checked instead."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)


def export_onnx(network: DeployNetwork, path: str, opset: int = DEFAULT_OPSET) -> None:
    """Write ``network`` (on the CPU, float32) to ``path`` as ONNX: input ``input`` (batch, C, height, width),
    output ``output`` (batch, C', scale * height, scale * width); height and width must be multiples of the
    network's ``input_multiple``. The file appears complete or not at all."""
    onnx = require("onnx")
    require("onnxscript")
    net = network.net.to(device="cpu", dtype=torch.float32).eval()
    size = 8 * network.input_multiple
    example = torch.rand(1, network.in_channels, size, size, generator=torch.Generator().manual_seed(0))
    dim = torch.export.Dim
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp.{os.getpid()}")
    try:
        with _quiet_exporter(), torch.no_grad():
            torch.onnx.export(net, (example,), tmp, dynamo=True, opset_version=opset, input_names=["input"],
                              output_names=["output"], verbose=False, external_data=False,
                              dynamic_shapes=({0: dim("batch"), 2: dim.DYNAMIC, 3: dim.DYNAMIC},))
        model = onnx.load(tmp)
        written = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if written != opset:
            raise UserError(f"--opset {opset}: the exporter could not write this opset (it wrote {written}); "
                            f"choose {written} or another one >= 17")
        _name_dimensions(model)
        meta = {"network": network.describe(), "scale": str(network.scale),
                "input": f"float32 NCHW, {network.in_channels} channel(s), values in [0, 1]",
                "producer": f"sr-framework {__version__}, torch {torch.__version__}"}
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(model)
        onnx.save(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _name_dimensions(model: Any) -> None:
    """The exporter names dynamic sizes ``s0``, ``s53``; name them ``height`` and ``width`` (the output then
    reads ``4*height``)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    names = {dims[2].dim_param: "height", dims[3].dim_param: "width"}
    names = {old: new for old, new in names.items() if old}
    if not names:
        return
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    for value in list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param:
                d.dim_param = pattern.sub(lambda m: names[m.group(1)], d.dim_param)


def check_image(network: DeployNetwork, path: Optional[str] = None) -> torch.Tensor:
    """The image the export is checked on: ``path`` (cropped to a multiple of the network's input multiple),
    or a synthetic 56x40 one (shapes, lines, text, textures), not square and not the traced size."""
    if path is not None:
        img = read_image(path)[None]
    else:
        img = render_image(64, 4, torch.Generator().manual_seed(13))[None, :, :40, :56]
    if network.in_channels == 1:
        img = luma(img)
    elif network.in_channels != 3:
        img = img[:, :1].expand(-1, network.in_channels, -1, -1)
    m = network.input_multiple
    return img[..., :img.shape[-2] // m * m, :img.shape[-1] // m * m].contiguous()


def onnx_difference(network: DeployNetwork, path: str, image: torch.Tensor) -> Optional[float]:
    """Max |onnxruntime - PyTorch| of the model at ``path`` on ``image``; None without onnxruntime."""
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        return None
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = network.net.to(device="cpu", dtype=torch.float32)(image).numpy()
    got = session.run(None, {session.get_inputs()[0].name: image.numpy()})[0]
    if got.shape != expected.shape:
        return float("inf")
    return float(np.abs(got - expected).max())
