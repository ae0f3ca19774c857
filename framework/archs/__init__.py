"""Network architectures; importing this package registers them all in ``ARCH_REGISTRY``."""
from .edsr_arch import EDSR
from .msrresnet_arch import MSRResNet
from .rrdbnet_arch import RRDBNet
from .srvgg_arch import SRVGGNetCompact

__all__ = ["EDSR", "MSRResNet", "RRDBNet", "SRVGGNetCompact"]
