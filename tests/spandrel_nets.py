"""Tiny configurations of every registered spandrel network, chosen so spandrel's auto-detection recovers them
from the weights alone (what it cannot read, e.g. CRAFT's window of 16 or DITN's patch of 8, stays at the value
it assumes), and the scale each trains at in the tests."""
from __future__ import annotations

from typing import Any, Dict

TINY: Dict[str, Dict[str, Any]] = {
    "SPAN": {"feature_channels": 8},
    "DAT": {"embed_dim": 16, "depth": [1], "num_heads": [2], "split_size": [2, 4], "expansion_factor": 2.0},
    "SwinIR": {"embed_dim": 12, "depths": [1], "num_heads": [2], "window_size": 4, "upsampler": "pixelshuffle",
               "mlp_ratio": 2.0},
    "Swin2SR": {"embed_dim": 12, "depths": [1], "num_heads": [2], "window_size": 4, "upsampler": "pixelshuffle",
                "mlp_ratio": 2.0},
    "HAT": {"embed_dim": 12, "depths": [1], "num_heads": [2], "window_size": 4, "num_feat": 8, "compress_ratio": 3,
            "squeeze_factor": 4, "mlp_ratio": 2.0},
    "OmniSR": {"num_feat": 8, "window_size": 4},
    "PLKSR": {"dim": 8, "n_blocks": 2, "kernel_size": 5},
    "RealPLKSR": {"dim": 8, "n_blocks": 2, "kernel_size": 5},
    "RCAN": {"n_resgroups": 1, "n_resblocks": 1, "n_feats": 8, "reduction": 4},
    "SAFMN": {"dim": 8, "n_blocks": 1},
    "DRCT": {"embed_dim": 12, "depths": [1], "num_heads": [2], "window_size": 4, "upsampler": "pixelshuffle",
             "gc": 4},
    "ATD": {"embed_dim": 12, "depths": [2], "num_heads": [2], "window_size": 4, "upsampler": "pixelshuffle",
            "category_size": 256, "num_tokens": 8, "reducted_dim": 4},
    "RGT": {"embed_dim": 12, "depth": [1], "num_heads": [2], "split_size": [4, 4]},
    "CRAFT": {"embed_dim": 12, "depths": [1], "num_heads": [2], "window_size": 16, "split_size_0": 4,
              "split_size_1": 16},
    "DITN_Real": {"dim": 12, "ITL_blocks": 1, "SAL_blocks": 1, "UFONE_blocks": 1, "patch_size": 8},
    "DCTLSA": {"nf": 10, "num_modules": 6, "num_head": 5},
    "SeemoRe": {"embedding_dim": 8, "num_layers": 1, "num_experts": 2},
    "MoSR": {"n_block": 1, "dim": 8},
    "MoESR": {"dim": 8, "n_blocks": 1, "n_block": 1, "upsample_dim": 8},
    "FDAT": {"embed_dim": 12, "num_groups": 1, "depth_per_group": 1, "num_heads": 2, "window_size": 4, "mid_dim": 8},
    "UpCunet2x": {},
    "UpCunet2x_fast": {},
    "UpCunet3x": {},
    "UpCunet4x": {},
    "SwiftSRGAN": {"num_channels": 8, "num_blocks": 1},
    "NAFNet": {"width": 8, "middle_blk_num": 1, "enc_blk_nums": [1], "dec_blk_nums": [1]},
    "DnCNN": {"in_nc": 3, "out_nc": 3, "nc": 8, "nb": 4},
    "KBNet_s": {"width": 8, "middle_blk_num": 1, "enc_blk_nums": [1], "dec_blk_nums": [1]},
    "FFTformer": {"dim": 8, "num_blocks": [1, 1, 1], "num_refinement_blocks": 1},
    "RetinexFormer": {"n_feat": 8, "stage": 1, "num_blocks": [1, 1, 1]},
}


def scale_of(name: str) -> int:
    """The scale the tests train a network at: its fixed one, else 2."""
    from framework.registry import ARCH_REGISTRY

    fixed = getattr(ARCH_REGISTRY.get(name), "fixed_scale", None)
    return fixed if fixed is not None else 2
