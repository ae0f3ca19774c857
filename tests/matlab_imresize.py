"""MATLAB's imresize (bicubic), computed independently of the framework: a plain loop over the formula of
MATLAB's imresize.m (cubic kernel with a = -0.5; when shrinking, the kernel stretched by 1/scale and scaled by
scale; weights normalised; indices outside mirrored with the edge pixel repeated, i.e. symmetric padding)."""
from __future__ import annotations

import math

import numpy as np


def _cubic(x: float) -> float:
    x = abs(x)
    if x <= 1:
        return 1.5 * x ** 3 - 2.5 * x ** 2 + 1
    if x <= 2:
        return -0.5 * x ** 3 + 2.5 * x ** 2 - 4 * x + 2
    return 0.0


def matlab_resize_1d(values: np.ndarray, scale: float) -> np.ndarray:
    n = len(values)
    antialias = scale < 1
    width = 4 / scale if antialias else 4
    out = []
    for i in range(1, math.ceil(n * scale - 1e-9) + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        acc = total = 0.0
        for k in range(math.ceil(width) + 2):
            j = left + k
            w = scale * _cubic(scale * (u - j)) if antialias else _cubic(u - j)
            while j < 1 or j > n:
                j = 1 - j if j < 1 else 2 * n + 1 - j
            acc += w * values[j - 1]
            total += w
        out.append(acc / total)
    return np.array(out)


def matlab_imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """(C, H, W): columns (height) first, then rows, as MATLAB does for equal factors."""
    tall = np.stack([np.stack([matlab_resize_1d(img[c, :, x], scale) for x in range(img.shape[2])], axis=1)
                     for c in range(img.shape[0])])
    return np.stack([np.stack([matlab_resize_1d(tall[c, y], scale) for y in range(tall.shape[1])])
                     for c in range(tall.shape[0])])
