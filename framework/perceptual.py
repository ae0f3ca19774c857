"""The perceptual loss (``perceptual_opt``): distances between VGG features of the output and the ground truth;
and DISTS, on the same VGG machinery.

The VGG is torchvision's, with its ImageNet weights. They are read from a local file only: ``weights_path``
when given, else torchvision's own cache file (``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``, where
``torchvision.models.vgg19(weights='IMAGENET1K_V1')`` puts it). Nothing is ever downloaded here: without
the file, building the loss fails with one line naming the file and where to put it, during the option
checks, before a run writes anything.

Layers are named as in BasicSR (``conv1_1``, ``relu1_1``, ..., ``pool5``), counted on torchvision's
``features`` modules, so ``layer_weights: {conv5_4: 1}`` means the same layer as in BasicSR's option files.
"""
from __future__ import annotations

import os
import typing
from types import MappingProxyType
from typing import Callable, Dict, List, Literal, Mapping, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .checkpoint.safe_load import safe_load
from .errors import UserError, did_you_mean
from .option_rules import LossSpec
from .registry import LOSS_REGISTRY

# torchvision's layer configurations by VGG depth.
_VGG_CFG = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}
VGG_TYPES = tuple(name + bn for name in _VGG_CFG for bn in ("", "_bn"))
# ImageNet statistics the torchvision weights were trained with.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def vgg_layer_names(features: nn.Sequential) -> List[str]:
    """BasicSR's names of torchvision's ``features`` modules: conv{block}_{i}, bn.., relu.., pool{block}."""
    names, block, index = [], 1, 1
    for module in features:
        if isinstance(module, nn.Conv2d):
            names.append(f"conv{block}_{index}")
        elif isinstance(module, nn.BatchNorm2d):
            names.append(f"bn{block}_{index}")
        elif isinstance(module, nn.ReLU):
            names.append(f"relu{block}_{index}")
            index += 1
        else:
            names.append(f"pool{block}")
            block, index = block + 1, 1
    return names


def vgg_cache_file(vgg_type: str) -> str:
    """Where torchvision keeps the ImageNet weights of ``vgg_type`` (it downloads them there itself)."""
    import torchvision  # here, not at import: torchvision takes seconds to import, and only GAN runs need it

    weights = torchvision.models.get_model_weights(vgg_type).IMAGENET1K_V1
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))


def missing_weights_message(vgg_type: str, path: str) -> str:
    return (f"{vgg_type} ImageNet weights not found: {path} does not exist; put torchvision's "
            f"{os.path.basename(vgg_cache_file(vgg_type))} there (on a machine with network access: python -c "
            f"\"import torchvision; torchvision.models.{vgg_type}(weights='IMAGENET1K_V1')\" fills the torch hub "
            f"cache, which TORCH_HOME moves), or set weights_path to a local copy")


class VGGFeatureExtractor(nn.Module):
    """torchvision's VGG ``features`` up to the deepest requested layer, frozen, returning named outputs."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, layer_names: List[str], vgg_type: str = "vgg19", use_input_norm: bool = True,
                 range_norm: bool = False, weights_path: Optional[str] = None) -> None:
        super().__init__()
        if vgg_type not in VGG_TYPES:
            raise UserError(f"PerceptualLoss: vgg_type must be one of {', '.join(VGG_TYPES)}, got {vgg_type!r}"
                            f"{did_you_mean(str(vgg_type), VGG_TYPES)}")
        from torchvision.models import vgg as tv_vgg  # see vgg_cache_file

        features = tv_vgg.make_layers(tv_vgg.cfgs[_VGG_CFG[vgg_type.removesuffix('_bn')]],
                                      batch_norm=vgg_type.endswith("_bn"))
        names = vgg_layer_names(features)
        unknown = [n for n in layer_names if n not in names]
        if unknown:
            raise UserError(f"PerceptualLoss: layer_weights: '{unknown[0]}' is not a layer of {vgg_type}"
                            f"{did_you_mean(unknown[0], names)} (layers: {names[0]} ... {names[-1]})")
        depth = max(names.index(n) for n in layer_names) + 1
        self.features = nn.Sequential(*list(features)[:depth])
        for module in self.features:  # the requested outputs must survive the next layer
            if isinstance(module, nn.ReLU):
                module.inplace = False
        self.names = names[:depth]
        self.layer_names = set(layer_names)
        self._load(vgg_type, weights_path)
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _load(self, vgg_type: str, weights_path: Optional[str]) -> None:
        path = weights_path or vgg_cache_file(vgg_type)
        if not os.path.isfile(path):
            raise UserError(missing_weights_message(vgg_type, path))
        state = safe_load(path, key="weights_path" if weights_path else f"{vgg_type} weights")
        if isinstance(state, dict) and isinstance(state.get("params"), dict):
            state = state["params"]
        if not isinstance(state, dict):
            raise UserError(f"PerceptualLoss: {path}: expected a VGG state dict, got {type(state).__name__}")
        own = self.features.state_dict()
        weights = {k.removeprefix("features."): v for k, v in state.items()}
        bad = [k for k, v in own.items() if not isinstance(weights.get(k), torch.Tensor) or weights[k].shape != v.shape]
        if bad:
            raise UserError(f"PerceptualLoss: {path} does not hold {vgg_type} features (missing or other shape: "
                            f"features.{bad[0]}); use torchvision's {os.path.basename(vgg_cache_file(vgg_type))}")
        self.features.load_state_dict({k: weights[k] for k in own})

    def train(self, mode: bool = True) -> "VGGFeatureExtractor":
        return super().train(False)  # a fixed feature space: never training mode (BatchNorm variants)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out = {}
        for name, layer in zip(self.names, self.features, strict=True):
            x = layer(x)
            if name in self.layer_names:
                out[name] = x
        return out


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """(n, c, h, w) -> (n, c, c) feature correlations, divided by c*h*w (as in BasicSR)."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    return flat.bmm(flat.transpose(1, 2)) / (c * h * w)


# traiNNer-redux's default layers: conv layers for the plain criteria, ReLU layers for its patch-distance one.
CONV_LAYER_WEIGHTS = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
RELU_LAYER_WEIGHTS = {"relu1_2": 0.1, "relu2_2": 0.1, "relu3_4": 1.0, "relu4_4": 1.0, "relu5_4": 1.0}
Criterion = Literal["l1", "l2", "fro", "charbonnier", "pdl+l1", "pd+l1", "pdl", "pd"]
PDL_CRITERIA = ("pdl+l1", "pd+l1", "pdl", "pd")


def patch_distribution_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """traiNNer-redux's ``pdl``: each channel's features as a distribution over the pixels (divided by
    their sum), the L1 distance of the two cumulative distributions, averaged over images and channels."""
    a = a / (a.sum(dim=(2, 3), keepdim=True) + 1e-14)
    b = b / (b.sum(dim=(2, 3), keepdim=True) + 1e-14)
    return (a.flatten(2).cumsum(-1) - b.flatten(2).cumsum(-1)).abs().sum(-1).mean()


@LOSS_REGISTRY.register()
class PerceptualLoss(nn.Module):
    """BasicSR's perceptual and style loss on VGG features (``perceptual_opt``), and traiNNer-redux's
    ``perceptualloss``.

    ``layer_weights`` maps layer names (``conv5_4``) to weights; the perceptual term is the weighted sum of
    ``criterion`` (l1, l2, fro = Frobenius norm, charbonnier) between the features, times
    ``perceptual_weight``; the style term the same on Gram matrices, times ``style_weight``. A zero weight turns
    its term off (None). traiNNer-redux's ``pdl+l1`` (``pd+l1``) compares conv layers with l1 and ReLU layers
    with :func:`patch_distribution_distance` times ``w_lambda``; ``pdl`` (``pd``) only the latter. Without
    ``layer_weights``: traiNNer-redux's (conv1_2, conv2_2 at 0.1, conv3_4 .. conv5_4 at 1; their ReLUs for
    pdl). Inputs are in [0, 1] (``range_norm``: [-1, 1]); ``use_input_norm`` applies the ImageNet
    normalisation. ``loss_weight`` scales both terms.
    """

    option_spec = LossSpec(role="perceptual", refused=MappingProxyType({
        key: f"'{key}' belongs to traiNNer-redux's fdl criterion, which is not provided here (criteria: l1, l2, "
             "fro, charbonnier, pdl+l1, pdl)"
        for key in ("num_proj_fd", "phase_weight_fd", "stride_fd", "num_proj_fdl", "phase_weight_fdl", "stride_fdl",
                    "alpha")}))

    def __init__(self, layer_weights: Optional[Dict[str, float]] = None, vgg_type: str = "vgg19",
                 use_input_norm: bool = True, range_norm: bool = False, perceptual_weight: float = 1.0,
                 style_weight: float = 0.0, criterion: Criterion = "l1", weights_path: Optional[str] = None,
                 w_lambda: float = 0.01, loss_weight: float = 1.0) -> None:
        super().__init__()
        if criterion not in typing.get_args(Criterion):
            raise UserError(f"PerceptualLoss: criterion must be one of {', '.join(typing.get_args(Criterion))}, "
                            f"got {criterion!r}" + (" (traiNNer-redux's fdl is not provided)"
                                                    if "fd" in str(criterion) else ""))
        if layer_weights is None:
            layer_weights = {**(CONV_LAYER_WEIGHTS if criterion not in ("pdl", "pd") else {}),
                             **(RELU_LAYER_WEIGHTS if criterion in PDL_CRITERIA else {})}
        if not layer_weights:
            raise UserError("PerceptualLoss: layer_weights is empty; name at least one layer, e.g. {conv5_4: 1.0}")
        self.layer_weights: Mapping[str, float] = dict(layer_weights)
        self.perceptual_weight = perceptual_weight * loss_weight
        self.style_weight = style_weight * loss_weight
        self.criterion = criterion
        self.w_lambda = w_lambda
        self.vgg = VGGFeatureExtractor(list(self.layer_weights), vgg_type, use_input_norm, range_norm, weights_path)

    def _distance(self, a: torch.Tensor, b: torch.Tensor, layer: str = "") -> torch.Tensor:
        if self.criterion in PDL_CRITERIA:
            if layer.startswith("relu") or (layer and self.criterion in ("pdl", "pd")):  # Gram matrices: l1
                return patch_distribution_distance(a, b) * self.w_lambda
            return F.l1_loss(a, b)
        if self.criterion == "fro":
            return torch.linalg.vector_norm(a - b)
        if self.criterion == "charbonnier":
            return torch.sqrt((a - b).square() + 1e-12).mean()
        return F.l1_loss(a, b) if self.criterion == "l1" else F.mse_loss(a, b)

    def forward(self, x: torch.Tensor, gt: torch.Tensor) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        x_features = self.vgg(x)
        gt_features = self.vgg(gt.detach())
        percep: Optional[torch.Tensor] = None
        style: Optional[torch.Tensor] = None
        if self.perceptual_weight > 0:
            percep = self._weighted_sum(lambda k: self._distance(x_features[k], gt_features[k], k))
            percep = percep * self.perceptual_weight
        if self.style_weight > 0:
            style = self._weighted_sum(lambda k: self._distance(gram_matrix(x_features[k]),
                                                                gram_matrix(gt_features[k])))
            style = style * self.style_weight
        return percep, style

    def _weighted_sum(self, term: Callable[[str], torch.Tensor]) -> torch.Tensor:
        """Sum over the layers of ``term(layer) * weight``, in the order of ``layer_weights`` (as BasicSR)."""
        total: Optional[torch.Tensor] = None
        for name, weight in self.layer_weights.items():
            value = term(name) * weight
            total = value if total is None else total + value
        assert total is not None  # layer_weights is never empty
        return total



class L2Pooling(nn.Module):
    """DISTS's downsampling: sqrt of a 3x3 Hann-weighted (0.5, 1, 0.5 outer product, normalised) average of the
    squares, stride 2, zero borders; it replaces VGG's max pooling, which aliases."""

    kernel: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        hann = torch.tensor([0.5, 1.0, 0.5])
        kernel = torch.outer(hann, hann)
        self.register_buffer("kernel", (kernel / kernel.sum()).expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(F.conv2d(x * x, self.kernel.to(x.dtype), stride=2, padding=1, groups=x.shape[1]) + 1e-12)


DISTS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
DISTS_FILE = "dists_weights.pt"


def dists_weights_file() -> str:
    """Where the DISTS alpha/beta file is looked for without ``dists_weights_path``: beside the VGG weights."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", DISTS_FILE)


@LOSS_REGISTRY.register()
class DISTSLoss(nn.Module):
    """DISTS (Ding et al., "Image Quality Assessment: Unifying Structure and Texture Similarity", TPAMI 2020):
    ``1 - sum_k sum_c (alpha_kc S1 + beta_kc S2)``, over the image and five VGG16 stages (max pooling replaced by
    :class:`L2Pooling`), S1 comparing the feature maps' means (texture), S2 their variances and covariance
    (structure), alpha and beta the learned weights normalised to sum 1; the batch mean, clamped from below at
    ``clip_min``. The VGG16 weights are found as the perceptual loss finds its VGG (``weights_path`` or
    torchvision's cache file), the learned alpha/beta in ``dists_weights_path`` (default: ``dists_weights.pt``
    in the same cache folder; traiNNer-redux's ``dists_weights.pt`` or DISTS's ``weights.pt``, keys ``alpha``
    and ``beta``): never downloaded. ``resize_input`` resizes both images to 256 px (bicubic) first.
    """

    float32 = True
    alpha: torch.Tensor
    beta: torch.Tensor
    CHANNELS = (3, 64, 128, 256, 512, 512)

    def __init__(self, as_loss: bool = True, load_weights: bool = True, use_input_norm: bool = True,
                 resize_input: bool = False, clip_min: float = 0.0, weights_path: Optional[str] = None,
                 dists_weights_path: Optional[str] = None, loss_weight: float = 1.0) -> None:
        super().__init__()
        if not as_loss or not load_weights:
            raise UserError("DISTSLoss: as_loss and load_weights must be true here (DISTS as a loss, with its "
                            "learned weights)")
        self.resize_input, self.clip_min, self.loss_weight = resize_input, clip_min, loss_weight
        self.vgg = VGGFeatureExtractor(list(DISTS_LAYERS), "vgg16", use_input_norm, False, weights_path)
        channels = 3
        for index, module in enumerate(self.vgg.features):
            if isinstance(module, nn.Conv2d):
                channels = module.out_channels
            elif isinstance(module, nn.MaxPool2d):
                self.vgg.features[index] = L2Pooling(channels)
        alpha, beta = self._read_alpha_beta(dists_weights_path)
        self.register_buffer("alpha", alpha, persistent=False)
        self.register_buffer("beta", beta, persistent=False)

    def _read_alpha_beta(self, path: Optional[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        file = path or dists_weights_file()
        if not os.path.isfile(file):
            raise UserError(f"DISTS weights not found: {file} does not exist; put the DISTS alpha/beta file there "
                            f"(traiNNer-redux's traiNNer/losses/{DISTS_FILE}, or weights.pt of the DISTS_pytorch "
                            "package: keys alpha and beta), or set dists_weights_path to a local copy")
        state = safe_load(file, key="dists_weights_path" if path else "DISTS weights")
        size = sum(self.CHANNELS)
        alpha, beta = (state.get(k) if isinstance(state, dict) else None for k in ("alpha", "beta"))
        if not (isinstance(alpha, torch.Tensor) and isinstance(beta, torch.Tensor) and alpha.numel() == size and
                beta.numel() == size):
            raise UserError(f"DISTSLoss: {file} does not hold DISTS's alpha and beta ({size} weights each)")
        return alpha.reshape(1, size, 1, 1).float(), beta.reshape(1, size, 1, 1).float()

    def _features(self, x: torch.Tensor) -> List[torch.Tensor]:
        if self.resize_input and x.shape[-2:] != (256, 256):
            x = F.interpolate(x, size=(256, 256), mode="bicubic", antialias=True, align_corners=False)
        return [x, *self.vgg(x).values()]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total, list(self.CHANNELS), dim=1)
        betas = torch.split(self.beta / total, list(self.CHANNELS), dim=1)
        similarity = torch.zeros((), device=x.device)
        c1 = c2 = 1e-6
        for fx, fy, alpha, beta in zip(self._features(x), self._features(y.detach()), alphas, betas, strict=True):
            mx, my = fx.mean((2, 3), keepdim=True), fy.mean((2, 3), keepdim=True)
            texture = (2 * mx * my + c1) / (mx.square() + my.square() + c1)
            vx, vy = (fx - mx).square().mean((2, 3), keepdim=True), (fy - my).square().mean((2, 3), keepdim=True)
            cov = (fx * fy).mean((2, 3), keepdim=True) - mx * my
            structure = (2 * cov + c2) / (vx + vy + c2)
            similarity = similarity + ((alpha * texture).sum(1) + (beta * structure).sum(1)).mean()
        return torch.clamp(1 - similarity, min=self.clip_min) * self.loss_weight
