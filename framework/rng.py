"""Seeding and capturing every random number generator, as plain data a weights-only load accepts."""
from __future__ import annotations

import random
from typing import Any, Dict, Optional, Tuple, Union, cast

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> Dict[str, Any]:
    """Python, numpy, torch CPU and CUDA states; numpy's array becomes a tensor (no numpy pickles)."""
    legacy = cast(Tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
    kind, keys, pos, has_gauss, cached = legacy
    state: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def derived_generator(seed: int, *parts: int, device: Optional[Union[str, torch.device]] = None) -> torch.Generator:
    """A generator on ``device`` (CPU by default) seeded from ``(seed, *parts)`` alone: independent streams
    for different tuples, and the same stream whenever the tuple comes again (a resumed run included)."""
    state = np.random.SeedSequence([seed, *parts]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device=device or "cpu").manual_seed(int(state[0]) << 32 | int(state[1]))
