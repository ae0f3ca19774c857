"""What the benchmarks share: where the repository and the example options are, and how a spread is printed."""
from __future__ import annotations

import os
import statistics
from typing import List

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE_OPTIONS = os.path.join(REPO, "options", "train", "example.yml")


def spread(values: List[float], fmt: str = "{:.3f}") -> str:
    """``median [min..max]`` of repeated measurements (the value alone for one)."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}..{fmt.format(max(values))}]"
