"""Install with ``pip install -e .`` (``pip install -e '.[dev]'`` for the tests)."""
import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(r'__version__ = "([^"]+)"', Path("framework/version.py").read_text()).group(1)

ONNX = ["onnx>=1.17", "onnxruntime>=1.20", "onnxscript>=0.2"]
# Adan and the schedule-free AdamW (train.optim_g type Adan / AdamWScheduleFree): one maintained package with
# both (0.4 MB wheel, pure Python), imported only by runs that ask for them.
OPTIM = ["pytorch-optimizer>=3.5,<5"]
WANDB = ["wandb>=0.19,<1"]

setup(
    name="sr-framework",
    version=version,
    description="A config-driven PyTorch trainer for image restoration with trustworthy checkpoints",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["framework", "framework.*"]),
    python_requires=">=3.10",
    install_requires=[
        # >= 2.10: the weights_only unpickler had code-execution flaws before (CVE-2025-32434, CVE-2026-24747)
        "torch>=2.10,<3",
        "torchvision>=0.25",
        # Image decoding and PNG encoding (torchvision's are deprecated since 0.29); its image decoders came in
        # 0.16. A torchcodec release is built for one torch release: pip picks the newest, made for the newest
        # torch; with an older torch install the torchcodec paired with it (docs/data.md, "Image decoding").
        "torchcodec>=0.16",
        # io_backend: {type: lmdb} and scripts/create_lmdb.py; a small wheel (0.6 MB) for every platform.
        "lmdb>=1.4",
        # logger.save_checkpoint_format: safetensors (the weights format spandrel and chaiNNer read); a small
        # wheel for every platform, no pickle.
        "safetensors>=0.4",
        "numpy>=1.24",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "tensorboard>=2.12",
        # The networks of the field (SPAN, DAT, SwinIR, HAT, ...) under spandrel's class names, and reading any
        # published model file (pretrain_path, network_g: {type: auto}).
        "spandrel>=0.4.2,<0.5",
    ],
    extras_require={
        # ONNX export (scripts/checkpoint.py export --onnx) and its check in onnxruntime; torch's exporter
        # needs onnxscript.
        "onnx": ONNX,
        "optim": OPTIM,
        # Weights & Biases logging (logger.wandb); imported only when configured.
        "wandb": WANDB,
        # The tests also run the ONNX exports, the optimizers and W&B in offline mode, and compare the optional
        # LPIPS metric with the lpips package (not needed to train).
        "dev": ["pytest>=7.0", "pytest-timeout>=2.3", "ruff>=0.17,<0.18", "mypy>=2.4,<2.5", *ONNX, *OPTIM,
                "lpips>=0.1.4", *WANDB],
    },
)
