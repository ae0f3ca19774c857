#!/usr/bin/env python
"""Training speed on one CUDA device: fp32, bf16 + channels_last, and with torch.compile.

``python scripts/bench_gpu.py --help``; docs/benchmarks.md says what it measures.
"""
import sys

from framework.bench.gpu import main
from framework.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main(main))
