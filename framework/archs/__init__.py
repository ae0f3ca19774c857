"""Network architectures; importing this package registers them all in ``ARCH_REGISTRY``.

As in BasicSR, every ``*_arch.py`` file in this folder is imported, so a network of your own registers itself
by being dropped here with ``@ARCH_REGISTRY.register()`` on its class.
"""
import importlib
import pkgutil

from .edsr_arch import EDSR
from .msrresnet_arch import MSRResNet
from .rrdbnet_arch import RRDBNet
from .srvgg_arch import SRVGGNetCompact
from .discriminator_arch import UNetDiscriminatorSN, VGGStyleDiscriminator

for _module in pkgutil.iter_modules(__path__):
    if _module.name.endswith("_arch"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["EDSR", "MSRResNet", "RRDBNet", "SRVGGNetCompact", "UNetDiscriminatorSN", "VGGStyleDiscriminator"]

from . import presets  # noqa: E402,F401  (after every class it names is registered)
