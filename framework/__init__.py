"""A config-driven PyTorch trainer for image restoration.

Importing the package registers every built-in component (networks, datasets, losses, metrics, optimizers,
schedules, models), so a YAML ``type:`` can name any of them; user code registers its own the same way
(``@ARCH_REGISTRY.register()`` in a module it imports, or a ``framework/archs/*_arch.py`` file).
"""
from ._started import IMPORT_STARTED  # noqa: F401  (first: start-up latency is counted from here)
from . import archs, image_losses, losses, lpips_metric, metrics, optim, perceptual  # noqa: F401  (registration)
from .data import datasets, realesrgan  # noqa: F401  (registration)
from .models import gan_model, realesrgan_model, sr_model  # noqa: F401  (registration)
from .version import __version__

__all__ = ["__version__"]
