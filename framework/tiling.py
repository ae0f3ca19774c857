"""Running a network on an image in overlapping tiles whose margins are cut off, so the seams vanish.

One function serves deployment (:class:`framework.inference.Upscaler`) and validation (``val.tile_size``,
train.py and test.py): what a user measures with tiled validation is what tiled inference delivers. Images are
padded to the network's input multiple first (pixel-unshuffle networks, window transformers) and the padding
is cut off the output again.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

Window = Tuple[int, int, int, int]  # along one axis: window start, window end, kept start, kept end
ProgressFn = Callable[[int, int], None]
Forward = Callable[[torch.Tensor], torch.Tensor]


def input_multiple(net: Optional[nn.Module]) -> int:
    """What a network declares its input height and width must be multiples of (``input_multiple``; 1 if
    nothing)."""
    return int(getattr(net, "input_multiple", 1) or 1)


def round_up(value: int, multiple: int) -> int:
    return math.ceil(value / multiple) * multiple


def axis_windows(length: int, tile: int, pad: int) -> List[Window]:
    """Cut ``[0, length)`` into kept parts of ``tile`` pixels, each inside a window with ``pad`` pixels of
    context on both sides where the image has them. Every window has the same size (``min(tile + 2 pad,
    length)``), so tiles can be batched: a window at the border is shifted inwards rather than cut.
    With ``length``, ``tile`` and ``pad`` multiples of m, every start is one too.
    """
    size = min(tile + 2 * pad, length)
    out = []
    for start in range(0, length, tile):
        end = min(start + tile, length)
        left = min(max(start - pad, 0), length - size)
        out.append((left, left + size, start, end))
    return out


def tile_windows(height: int, width: int, tile: int, pad: int) -> List[Tuple[Window, Window]]:
    """The tiles of an image: pairs of (rows, columns) windows, row by row; ``tile`` 0 = one whole tile."""
    return [(rows, cols) for rows in axis_windows(height, tile or height, pad)
            for cols in axis_windows(width, tile or width, pad)]


def input_minimum(net: Optional[nn.Module]) -> int:
    """The smallest input height and width a network declares it takes (``input_minimum``; 1 if nothing)."""
    return int(getattr(net, "input_minimum", 1) or 1)


def pad_to_multiple(img: torch.Tensor, multiple: int, minimum: int = 1) -> torch.Tensor:
    """Extend the bottom and right of (N, C, H, W) to multiples of ``multiple`` of at least ``minimum`` pixels
    (reflected, or replicated where the image is too small to reflect)."""
    height, width = img.shape[-2:]
    pad_h = round_up(max(height, minimum), multiple) - height
    pad_w = round_up(max(width, minimum), multiple) - width
    if not (pad_h or pad_w):
        return img
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(img, (0, pad_w, 0, pad_h), mode=mode)


def fit_input(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` for an input of any size: padded to the network's ``input_multiple`` and ``input_minimum``,
    and the output cut back to ``scale`` times ``x``'s size. A network that takes any size runs on ``x`` as is."""
    padded = pad_to_multiple(x, input_multiple(net), input_minimum(net))
    if padded is x:
        return net(x)
    out = net(padded)
    scale = out.shape[-1] // padded.shape[-1]
    return out[..., :x.shape[-2] * scale, :x.shape[-1] * scale]


def run_tiled(forward: Forward, img: torch.Tensor, *, scale: int, multiple: int = 1, minimum: int = 1, tile: int = 0,
              pad: int = 0, batch: int = 1, progress: Optional[ProgressFn] = None) -> torch.Tensor:
    """``forward`` over (N, C, H, W) ``img`` -> the (N, C', sH, sW) output, whole (``tile`` 0) or in tiles of
    ``tile`` input pixels with ``pad`` pixels of context each side (both rounded up to ``multiple``), ``batch``
    tiles per call of ``forward``. The image is padded to ``multiple`` and to at least ``minimum`` pixels a side
    (the network's declared input sizes). The output has the device and dtype ``forward`` returns.

    With a pad of at least the network's receptive field (in input pixels), each kept pixel sees exactly the
    inputs it sees in the whole image, so the result equals the whole-image one up to float rounding.
    """
    height, width = img.shape[-2:]
    tile, pad = round_up(tile, multiple), round_up(pad, multiple)
    img = pad_to_multiple(img, multiple, minimum)
    H, W = img.shape[-2:]
    tiles = tile_windows(H, W, tile, pad)
    if len(tiles) == 1 and tiles[0] == ((0, H, 0, H), (0, W, 0, W)):  # one window: no copy into a canvas
        result = forward(img)
        if progress is not None:
            progress(1, 1)
        return result[..., :height * scale, :width * scale]
    n, s = img.shape[0], scale
    out: Optional[torch.Tensor] = None
    per_pass = max(1, batch // n)
    for first in range(0, len(tiles), per_pass):
        group = tiles[first:first + per_pass]
        result = forward(torch.cat([img[..., r[0]:r[1], c[0]:c[1]] for r, c in group]))
        if out is None:
            out = result.new_empty(n, result.shape[1], H * s, W * s)
        for i, (r, c) in enumerate(group):
            part = result[i * n:(i + 1) * n]
            out[..., r[2] * s:r[3] * s, c[2] * s:c[3] * s] = \
                part[..., (r[2] - r[0]) * s:(r[3] - r[0]) * s, (c[2] - c[0]) * s:(c[3] - c[0]) * s]
        if progress is not None:
            progress(min(first + per_pass, len(tiles)), len(tiles))
    assert out is not None
    return out[..., :height * s, :width * s]
