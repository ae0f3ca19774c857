"""GAN fine-tuning: SRGAN and ESRGAN (relativistic average GAN), with BasicSR's options and loss names.

The usual second stage of ESRGAN / Real-ESRGAN training: the generator starts from a PSNR model
(``path.pretrain_path``) and learns against a discriminator ``network_d`` with a pixel loss
(``train.pixel_opt``), a perceptual loss (``train.perceptual_opt``) and an adversarial one
(``train.gan_opt``), each optional where BasicSR allows it.

Per iteration, as in BasicSR: the generator steps when ``iteration % net_d_iters == 0`` and
``iteration > net_d_init_iters``, the discriminator every iteration; both schedules and the generator's EMA
advance every iteration. The discriminator's real and fake terms are backpropagated one after the other
(one forward per backward, as BasicSR does so that BatchNorm discriminators work under DDP).
"""
from __future__ import annotations

import re
import warnings
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

from ..errors import building
from ..loss_set import LossEntry
from ..network_spec import full_arguments
from ..option_rules import ModelRequirements, keys_valid
from ..options import Options, TrainingOptions, TrainOptions
from ..registry import ARCH_REGISTRY, MODEL_REGISTRY
from ..schema import Component, Problem
from .base import Batch
from .sr_model import SRModel

Losses = Dict[str, torch.Tensor]
Backward = Callable[[torch.Tensor], None]


def _no_backward(_loss: torch.Tensor) -> None:
    """The discriminator's losses without an update (the dry run)."""


def check_gan_loss(options: TrainingOptions, entries: List[LossEntry], problems: List[Problem]) -> None:
    """A GAN model trains against one GAN loss, with a nonzero weight."""
    at = options.model_type
    adversarial = [entry for entry in entries if entry.role == "adversarial" and entry.weight != 0]
    disabled = [entry for entry in entries if entry.role == "adversarial" and entry.weight == 0]
    if not adversarial and disabled:
        problems.append(Problem(("train", *disabled[0].key, "loss_weight"), f"{at} trains against its GAN loss: give "
                                                                            "it a nonzero loss_weight (e.g. 0.1), or "
                                                                            "use SRModel"))
    elif not adversarial and keys_valid(problems, ("train", "gan_opt")):  # a mistyped one is said there
        problems.append(Problem(("train", "gan_opt"), f"missing required key for {at} (or a ganloss entry in "
                                                      "train.losses) (e.g. {type: GANLoss, gan_type: vanilla, "
                                                      "loss_weight: 5.0e-3})"))
    for extra in adversarial[1:]:
        problems.append(Problem(("train", *extra.key, "type"), f"a second GAN loss; {at} takes one (in "
                                                               "train.gan_opt or one ganloss entry)"))


def check_discriminator_patch(options: Options, network_d: Component, problems: List[Problem]) -> None:
    """A discriminator with a fixed input size (VGGStyleDiscriminator's ``input_size``) or an input multiple
    (``input_multiple``) must match the training patches."""
    if network_d.type not in ARCH_REGISTRY:
        return
    name = network_d.type
    size = full_arguments(network_d).get("input_size")
    multiple = getattr(ARCH_REGISTRY.get(name), "input_multiple", None)
    train_set = options.train_set
    gt_size = train_set.dataset.kwargs.get("gt_size") if train_set and train_set.dataset else None
    if isinstance(multiple, int) and isinstance(gt_size, int) and gt_size % multiple:
        fit = gt_size - gt_size % multiple or multiple
        problems.append(Problem(("datasets", "train", "gt_size"), f"{name} judges patches whose sides are multiples "
                                                                  f"of {multiple}, but gt_size is {gt_size}; use "
                                                                  f"{fit}"))
    elif isinstance(size, int) and gt_size is not None and size != gt_size:
        problems.append(Problem(("network_d", "input_size"), f"{name} judges {size}x{size} patches but "
                                                             f"datasets.train.gt_size is {gt_size}; make them equal"))


@MODEL_REGISTRY.register()
class SRGANModel(SRModel):
    """SRGAN: a standard GAN loss on the discriminator's outputs; the base of :class:`ESRGANModel`. Built as
    SRModel is, plus the discriminator, its optimizer and schedule."""

    requirements = ModelRequirements(required=(("network_d",), ("train.optim_d",)), adversarial=True)

    @classmethod
    def check_options(cls, options: TrainingOptions, problems: List[Problem]) -> None:
        """One GAN loss with a nonzero weight (``train.gan_opt`` or a ``ganloss`` entry of ``train.losses``),
        and training patches the discriminator can judge."""
        check_gan_loss(options, cls.loss_entries(options.train), problems)
        if options.network_d is not None and keys_valid(problems, ("network_d",), ("datasets", "train")):
            check_discriminator_patch(options, options.network_d, problems)

    def build_training(self, options: Options, train: TrainOptions) -> None:
        assert options.network_d is not None and train.optim_d is not None  # requirements
        with building("network_d", args=options.network_d.kwargs):
            self.net_d = self.nets["net_d"] = options.network_d.build(ARCH_REGISTRY).to(self.device).train()
        super().build_training(options, train)
        assert self.losses.gan is not None  # check_gan_loss
        self.cri_gan: nn.Module = self.losses.gan
        self.build_optimizer(train.optim_d, self.net_d, "optim_d")
        if train.scheduler_d is not None:
            self.build_schedule("optim_d", train.scheduler_d, "scheduler_d", train.warmup_iter)
        else:  # BasicSR: one schedule for every optimizer
            self.build_schedule("optim_d", train.scheduler, "scheduler", train.warmup_iter)
        self.net_d_iters = train.net_d_iters
        self.net_d_init_iters = train.net_d_init_iters

    # ------------------------------------------------------------------------------------------ the step

    def generator_steps(self, iteration: int) -> bool:
        """Whether the generator steps at ``iteration`` (1-based), BasicSR's rule."""
        return iteration % self.net_d_iters == 0 and iteration > self.net_d_init_iters

    def train_step(self, batch: Batch, iteration: int) -> Dict[str, torch.Tensor]:
        """The generator's step (when due) and the discriminator's, over ``accumulate_steps`` micro-batches, then
        both schedules and the EMA."""
        step_g = self.generator_steps(iteration)
        self.zero_grad("optim_g")
        self.zero_grad("optim_d")
        parts = [self._micro_step(micro, step_g) for micro in self.micro_batches(batch)]
        self.note_learning_rates()  # both rates, also at the iterations where only D steps
        if step_g:
            self.step("optim_g", clip_norm=self.grad_clip_norm)
        self.step("optim_d", clip_norm=self.grad_clip_norm)
        with warnings.catch_warnings():  # G's schedule advances while only D steps (net_d_init_iters)
            warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()` before"))
            for scheduler in self.schedulers.values():
                scheduler.step()
        for ema in self.emas.values():
            ema.update(self.net_g)
        return self.mean_losses(parts)

    def _micro_step(self, micro: Batch, step_g: bool) -> Losses:
        """Forward and backward passes of one micro-batch: the generator's losses (when it steps), then the
        discriminator's. The generator's GAN loss runs the plain discriminator (frozen, outside DDP: its
        parameters get no gradient there); the discriminator trains through its DDP / compiled wrapper."""
        lq = self.to_device(micro["lq"])
        losses: Losses = {}
        self.net_d.requires_grad_(False)
        with torch.set_grad_enabled(step_g), self.autocast():  # without a G step its output is only D's input
            output = self.train_net("net_g")(lq)
            if step_g:
                l_g_total, g_losses = self.generator_losses(output, micro)
        if step_g:
            self.backward(l_g_total, "optim_g")
            losses.update(g_losses)
        self.net_d.requires_grad_(True)
        with self.autocast():
            losses.update(self.discriminator_losses(output.detach(), self.target(micro, "gan"), self._backward_d))
        return losses

    def _backward_d(self, loss: torch.Tensor) -> None:
        """The discriminator's backward passes run between its forward passes: outside autocast, as PyTorch
        recommends for every backward pass."""
        with torch.autocast(self.device.type, enabled=False):
            self.backward(loss, "optim_d")

    def forward_losses(self, batch: Batch) -> Tuple[torch.Tensor, Losses]:
        """Every loss of one step, without updates (the dry run)."""
        lq = batch["lq"].to(self.device, non_blocking=True)
        output = self.net_g(lq)
        _, losses = self.generator_losses(output, batch)
        losses.update(self.discriminator_losses(output.detach(), self.target(batch, "gan"), _no_backward))
        return output, losses

    # ------------------------------------------------------------------------------------------ the losses

    def generator_losses(self, output: torch.Tensor, batch: Batch) -> Tuple[torch.Tensor, Losses]:
        """The generator's total loss and its named parts (``l_g_pix``, ``l_g_percep``, ``l_g_style``, those of
        ``train.losses``, ``l_g_gan``)."""
        losses = self.loss_terms(self.losses, output, batch, prefix="l_g_")
        losses["l_g_gan"] = self.generator_gan_loss(output, self.target(batch, "gan"))
        return sum(losses.values(), torch.zeros((), device=output.device)), losses

    def generator_gan_loss(self, output: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return self.cri_gan(self.net_d(output), True, is_disc=False)

    def discriminator_losses(self, fake: torch.Tensor, gt: torch.Tensor, backward: Backward) -> Losses:
        """``l_d_real``, ``l_d_fake`` (each backpropagated by ``backward`` right after its forward) and the mean
        outputs ``out_d_real``, ``out_d_fake``."""
        net_d = self.train_net("net_d")
        real_d_pred = net_d(gt)
        l_d_real = self.cri_gan(real_d_pred, True, is_disc=True)
        backward(l_d_real)
        fake_d_pred = net_d(fake)
        l_d_fake = self.cri_gan(fake_d_pred, False, is_disc=True)
        backward(l_d_fake)
        return {"l_d_real": l_d_real, "l_d_fake": l_d_fake, "out_d_real": real_d_pred.detach().mean(),
                "out_d_fake": fake_d_pred.detach().mean()}


@MODEL_REGISTRY.register()
class ESRGANModel(SRGANModel):
    """ESRGAN: the relativistic average GAN: each side judges whether real images look more realistic than
    the average fake one (and the reverse), instead of judging images on their own."""

    def generator_gan_loss(self, output: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        real_d_pred = self.net_d(gt).detach()
        fake_g_pred = self.net_d(output)
        l_g_real = self.cri_gan(real_d_pred - fake_g_pred.mean(), False, is_disc=False)
        l_g_fake = self.cri_gan(fake_g_pred - real_d_pred.mean(), True, is_disc=False)
        return (l_g_real + l_g_fake) / 2

    def discriminator_losses(self, fake: torch.Tensor, gt: torch.Tensor, backward: Backward) -> Losses:
        net_d = self.train_net("net_d")
        with torch.no_grad():  # BasicSR: net_d(output).detach(), only its mean is used
            fake_d_mean = net_d(fake).mean()
        real_d_pred = net_d(gt)
        l_d_real = self.cri_gan(real_d_pred - fake_d_mean, True, is_disc=True) * 0.5
        backward(l_d_real)
        fake_d_pred = net_d(fake)
        l_d_fake = self.cri_gan(fake_d_pred - real_d_pred.detach().mean(), False, is_disc=True) * 0.5
        backward(l_d_fake)
        return {"l_d_real": l_d_real, "l_d_fake": l_d_fake, "out_d_real": real_d_pred.detach().mean(),
                "out_d_fake": fake_d_pred.detach().mean()}
