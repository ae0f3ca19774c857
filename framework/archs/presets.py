"""Presets: the lower-case network names traiNNer-redux users type (``span``, ``dat_2``, ``esrgan``, ...), each a
registered class with the hyperparameters of traiNNer-redux's preset function of that name (its
``traiNNer/archs/*_arch.py``; the scale always comes from the top-level ``scale``).

``network_g: {type: dat_light}`` is ``network_g: {type: DAT, <the arguments below>, upscale: <scale>}``; keys
given beside ``type`` override the preset's. The preset table of docs/networks.md is generated from :data:`PRESETS`.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ..registry import ARCH_REGISTRY

_SIX = (6, 6, 6, 6, 6, 6)
_HAT = {"window_size": 16, "compress_ratio": 3, "squeeze_factor": 30, "conv_scale": 0.01, "overlap_ratio": 0.5,
        "img_range": 1.0, "mlp_ratio": 2.0, "upsampler": "pixelshuffle", "resi_connection": "1conv"}
_DRCT = {"window_size": 16, "img_range": 1.0, "embed_dim": 180, "mlp_ratio": 2.0, "upsampler": "pixelshuffle",
         "resi_connection": "1conv"}
_SWINIR = {"window_size": 8, "mlp_ratio": 2.0, "img_range": 1.0}
_RGB = {"num_in_ch": 3, "num_out_ch": 3}

# name -> (registered class, arguments)
PRESETS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    # Native networks (BasicSR's argument names)
    "esrgan": ("RRDBNet", {**_RGB, "num_feat": 64, "num_block": 23, "num_grow_ch": 32}),
    "esrgan_lite": ("RRDBNet", {**_RGB, "num_feat": 32, "num_block": 12, "num_grow_ch": 32}),
    "compact": ("SRVGGNetCompact", {**_RGB, "num_feat": 64, "num_conv": 16, "act_type": "prelu"}),
    "ultracompact": ("SRVGGNetCompact", {**_RGB, "num_feat": 64, "num_conv": 8, "act_type": "prelu"}),
    "superultracompact": ("SRVGGNetCompact", {**_RGB, "num_feat": 24, "num_conv": 8, "act_type": "prelu"}),
    # spandrel networks
    "span": ("SPAN", {"feature_channels": 52, "norm": False}),
    "span_s": ("SPAN", {"feature_channels": 48, "norm": False}),
    "span_f32": ("SPAN", {"feature_channels": 32, "norm": False}),
    "dat": ("DAT", {"img_size": 64, "split_size": (8, 32), "depth": _SIX, "embed_dim": 180, "num_heads": _SIX,
                    "expansion_factor": 4.0, "resi_connection": "1conv"}),
    "dat_s": ("DAT", {"img_size": 64, "split_size": (8, 16), "depth": _SIX, "embed_dim": 180, "num_heads": _SIX,
                      "expansion_factor": 2.0, "resi_connection": "1conv"}),
    "dat_2": ("DAT", {"img_size": 64, "split_size": (8, 32), "depth": _SIX, "embed_dim": 180, "num_heads": _SIX,
                      "expansion_factor": 2.0, "resi_connection": "1conv"}),
    "dat_light": ("DAT", {"img_size": 64, "split_size": (8, 32), "depth": (18,), "embed_dim": 60, "num_heads": (6,),
                          "expansion_factor": 2.0, "resi_connection": "3conv",
                          "upsampler": "pixelshuffledirect"}),
    "swinir_s": ("SwinIR", {**_SWINIR, "img_size": 64, "embed_dim": 60, "depths": (6, 6, 6, 6),
                            "num_heads": (6, 6, 6, 6), "upsampler": "pixelshuffledirect", "resi_connection": "1conv"}),
    "swinir_m": ("SwinIR", {**_SWINIR, "img_size": 48, "embed_dim": 180, "depths": _SIX, "num_heads": _SIX,
                            "upsampler": "pixelshuffle", "resi_connection": "1conv"}),
    "swinir_l": ("SwinIR", {**_SWINIR, "img_size": 64, "embed_dim": 240, "depths": (6,) * 9, "num_heads": (8,) * 9,
                            "upsampler": "nearest+conv", "resi_connection": "3conv"}),
    "hat_s": ("HAT", {**_HAT, "compress_ratio": 24, "squeeze_factor": 24, "embed_dim": 144, "depths": _SIX,
                      "num_heads": _SIX}),
    "hat_m": ("HAT", {**_HAT, "embed_dim": 180, "depths": _SIX, "num_heads": _SIX}),
    "hat_l": ("HAT", {**_HAT, "embed_dim": 180, "depths": (6,) * 12, "num_heads": (6,) * 12}),
    "omnisr": ("OmniSR", {"num_feat": 64, "res_num": 5, "block_num": 1, "bias": True, "window_size": 8, "pe": True}),
    "plksr": ("PLKSR", {"dim": 64, "n_blocks": 28, "ccm_type": "DCCM", "kernel_size": 17, "split_ratio": 0.25,
                        "lk_type": "PLK", "use_ea": True}),
    "plksr_tiny": ("PLKSR", {"dim": 64, "n_blocks": 12, "ccm_type": "DCCM", "kernel_size": 13, "split_ratio": 0.25,
                             "lk_type": "PLK", "use_ea": False}),
    "realplksr": ("RealPLKSR", {"dim": 64, "n_blocks": 28, "kernel_size": 17, "split_ratio": 0.25, "use_ea": True,
                                "norm_groups": 4, "layer_norm": True}),
    "realplksr_tiny": ("RealPLKSR", {"dim": 64, "n_blocks": 12, "kernel_size": 13, "split_ratio": 0.25,
                                     "use_ea": False, "norm_groups": 4, "layer_norm": True}),
    "realplksr_large": ("RealPLKSR", {"dim": 96, "n_blocks": 28, "kernel_size": 17, "split_ratio": 0.25,
                                      "use_ea": True, "norm_groups": 4, "layer_norm": True}),
    "rcan": ("RCAN", {"n_resgroups": 10, "n_resblocks": 20, "n_feats": 64, "reduction": 16}),
    "safmn": ("SAFMN", {"dim": 36, "n_blocks": 8, "ffn_scale": 2.0}),
    "safmn_l": ("SAFMN", {"dim": 128, "n_blocks": 16, "ffn_scale": 2.0}),
    "drct": ("DRCT", {**_DRCT, "img_size": 64, "depths": _SIX, "num_heads": _SIX}),
    "drct_l": ("DRCT", {**_DRCT, "img_size": 64, "depths": (6,) * 12, "num_heads": (6,) * 12}),
    "drct_xl": ("DRCT", {**_DRCT, "img_size": 64, "depths": (6,) * 14, "num_heads": (6,) * 14}),
    "atd": ("ATD", {"img_size": 96, "embed_dim": 210, "depths": _SIX, "num_heads": _SIX, "window_size": 16,
                    "category_size": 256, "num_tokens": 128, "reducted_dim": 20, "convffn_kernel_size": 5,
                    "img_range": 1.0, "mlp_ratio": 2.0, "upsampler": "pixelshuffle", "resi_connection": "1conv"}),
    "atd_light": ("ATD", {"img_size": 64, "embed_dim": 48, "depths": (6, 6, 6, 6), "num_heads": (4, 4, 4, 4),
                          "window_size": 16, "category_size": 128, "num_tokens": 64, "reducted_dim": 8,
                          "convffn_kernel_size": 7, "img_range": 1.0, "mlp_ratio": 1.0,
                          "upsampler": "pixelshuffledirect", "resi_connection": "1conv"}),
    "rgt": ("RGT", {"img_size": 64, "img_range": 1.0, "split_size": (8, 32), "depth": (6,) * 8, "embed_dim": 180,
                    "num_heads": (6,) * 8, "mlp_ratio": 2.0, "resi_connection": "1conv", "c_ratio": 0.5}),
    "rgt_s": ("RGT", {"img_size": 64, "img_range": 1.0, "split_size": (8, 32), "depth": _SIX, "embed_dim": 180,
                      "num_heads": _SIX, "mlp_ratio": 2.0, "resi_connection": "1conv", "c_ratio": 0.5}),
    "mosr": ("MoSR", {"n_block": 24, "dim": 64, "upsampler": "ps", "drop_path": 0.0, "kernel_size": 7,
                      "expansion_ratio": 1.5, "conv_ratio": 1.0}),
    "mosr_t": ("MoSR", {"n_block": 5, "dim": 48, "upsampler": "ps", "drop_path": 0.0, "kernel_size": 7,
                        "expansion_ratio": 1.5, "conv_ratio": 1.0}),
    "seemore_t": ("SeemoRe", {"num_experts": 3, "num_layers": 6, "embedding_dim": 36, "img_range": 1.0,
                              "use_shuffle": True, "global_kernel_size": 11, "recursive": 2, "lr_space": "exp",
                              "topk": 1}),
    "moesr2": ("MoESR", {"dim": 64, "n_blocks": 9, "n_block": 4, "expansion_factor": 8 / 3, "expansion_msg": 1.5,
                         "upsampler": "pixelshuffledirect", "upsample_dim": 64}),
    "realcugan": ("RealCUGAN", {"pro": False, "fast": False}),
}


def _register_all() -> None:
    for name, (target, arguments) in PRESETS.items():
        if target in ARCH_REGISTRY:
            ARCH_REGISTRY.register_preset(name, target, arguments)


_register_all()
