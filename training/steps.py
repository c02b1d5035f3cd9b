"""One optimisation step of D and of G, the way stylegan2-ada splits them from the loop.

``AdversarialStep`` owns the networks, their optimizers, the loss, the penalties
(WGAN-GP's gradient penalty, R1), differentiable augmentation and the EMA copy
of G. The loop hands it batches; it knows nothing of epochs, files or logging.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import torch
from torch import nn

from training.augment import DiffAugment
from training.distributed import World, wrap
from training.losses import Loss, gradient_penalty
from training.options import TrainOptions


class EMA:
    """An exponential moving average of G's weights (buffers copied as they are)."""

    def __init__(self, net: nn.Module, decay: float, warmup: bool = False) -> None:
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.net = copy.deepcopy(net).eval().requires_grad_(False)

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        ema_p = list(self.net.parameters())
        weight = 1 - self.current_decay()
        torch._foreach_lerp_(ema_p, [p.detach() for p in net.parameters()], weight)
        for b_ema, b in zip(self.net.buffers(), net.buffers(), strict=True):
            b_ema.copy_(b)
        self.updates += 1


def r1_penalty(
    d: Callable[..., torch.Tensor], real: torch.Tensor, *cond: torch.Tensor
) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[|grad_x D(x)|^2] on real images."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x, *cond).sum(), x, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def pair_labels(labels: torch.Tensor) -> torch.Tensor:
    """Labels whose second half repeats the first (image i and i + B//2 share a label)."""
    half = labels.shape[0] // 2
    paired = labels.clone()
    paired[half : 2 * half] = labels[:half]
    return paired


def pair_codes(z: torch.Tensor, codes: int) -> torch.Tensor:
    """Latents whose second half repeats the first's code values (z[:, :codes], from
    which an InfoGAN G reads its discrete code), so that the mode-seeking pairs share a
    code as a conditional G's pairs share a label."""
    half = z.shape[0] // 2
    z = z.clone()
    z[half : 2 * half, :codes] = z[:half, :codes]
    return z


def mode_seeking(fake: torch.Tensor, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """MSGAN's term (Mao et al. 2019): 1 / (mean|x1 - x2| / mean|z1 - z2| + eps) over the
    pairs (i, i + B//2). G minimising it keeps images of different latents apart."""
    half = fake.shape[0] // 2
    dx = (fake[:half] - fake[half : 2 * half]).abs().mean()
    dz = (z[:half] - z[half : 2 * half]).abs().mean()
    return 1.0 / (dx / dz + eps)


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """``net``'s parameters need no gradient inside the block (as they were after it)."""
    flags = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(net.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def make_optimizer(net: nn.Module, o: TrainOptions, lr: float) -> torch.optim.Optimizer:
    """Adam or RMSprop over ``net``'s parameters. Adam runs fused (one kernel for every
    parameter) on CPU and CUDA: at batch 16 on one CPU thread the per-tensor update
    loop was a sixth of a step."""
    params = list(net.parameters())
    if o.optimizer == "adam":
        assert o.beta1 is not None and o.beta2 is not None
        fused = bool(params) and params[0].device.type in ("cpu", "cuda")
        return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), fused=fused or None)
    return torch.optim.RMSprop(params, lr=lr, foreach=True)


@dataclass
class Batch:
    real: torch.Tensor
    real_labels: torch.Tensor | None  # labels of the real images (conditional models)
    fake_labels: torch.Tensor | None  # labels G is asked for


class AdversarialStep:
    """D and G updates for one loss; ``step(batch)`` returns (D loss, G loss or None)."""

    def __init__(
        self,
        g: nn.Module,
        d: nn.Module,
        loss: Loss,
        o: TrainOptions,
        world: World | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.g, self.d, self.loss, self.o = g, d, loss, o
        self.world = world or World()
        device = device or next(g.parameters()).device
        # What the steps run: the nets in DDP under torchrun, the nets themselves otherwise.
        self.g_run = wrap(g, self.world, device)
        self.d_run = wrap(d, self.world, device)
        assert o.lr_g is not None and o.lr_d is not None and o.n_critic is not None
        self.opt_g = make_optimizer(g, o, o.lr_g)
        self.opt_d = make_optimizer(d, o, o.lr_d)
        self.ema = EMA(g, o.ema, o.ema_warmup) if o.ema > 0 else None
        self.augment = DiffAugment(o.augment)
        self.n_critic = o.n_critic
        self.latent_dim = int(g.latent_dim)
        self.device_type = device.type
        self.bf16 = o.precision == "bf16"

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """bfloat16 autocast of a forward pass under ``--precision bf16``; nothing otherwise.

        The weights, the optimizers' state, the losses and the penalties' norms stay
        float32: only the matmuls and convolutions run in bfloat16.
        """
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    def critic(self, x: torch.Tensor, *cond: torch.Tensor) -> torch.Tensor:
        """D's scores as float32 (the losses' and penalties' input)."""
        with self.autocast():
            return self.d_run(x, *cond).float()

    def set_lr_factor(self, factor: float) -> None:
        """Scale both learning rates (a schedule's value at this step)."""
        assert self.o.lr_g is not None and self.o.lr_d is not None
        for opt, base in ((self.opt_g, self.o.lr_g), (self.opt_d, self.o.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * factor

    def _score(
        self, x: torch.Tensor, labels: torch.Tensor | None, net: nn.Module | None = None
    ) -> torch.Tensor:
        x = self.augment(x) if self.augment else x
        cond = () if labels is None else (labels,)
        with self.autocast():
            return (net or self.d_run)(x, *cond).float()

    def _class_loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The auxiliary classifier's cross-entropy on ``x`` (AC-GAN's class term). It is
        trained on real images only, so G cannot teach it to accept its mistakes."""
        x = self.augment(x) if self.augment else x
        with self.autocast():
            logits = self.d.classify(x)  # type: ignore[operator]
        return nn.functional.cross_entropy(logits.float(), labels)

    def discriminator_step(
        self, batch: Batch, fake: torch.Tensor, codes: torch.Tensor | None = None
    ) -> float:
        o, cond = self.o, () if batch.real_labels is None else (batch.real_labels,)
        real_scores = self._score(batch.real, batch.real_labels)
        fake_scores = self._score(fake.detach(), batch.fake_labels)
        d_loss = self.loss.d_loss(real_scores, fake_scores)
        if o.ac_lambda > 0:
            assert batch.real_labels is not None
            d_loss = d_loss + o.ac_lambda * self._class_loss(batch.real, batch.real_labels)
        if codes is not None:  # InfoGAN: Q learns to tell G's code
            d_loss = d_loss + o.info_lambda * self._class_loss(fake.detach(), codes)
        if self.loss.gradient_penalty:
            d_loss = d_loss + o.gp_lambda * gradient_penalty(
                self.critic, batch.real, fake.detach(), *cond
            )
        if o.r1_gamma > 0:
            real = self.augment(batch.real) if self.augment else batch.real
            d_loss = d_loss + o.r1_gamma / 2 * r1_penalty(self.critic, real, *cond)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        return float(d_loss.item())

    def generator_step(
        self,
        batch: Batch,
        fake: torch.Tensor,
        z: torch.Tensor | None = None,
        codes: torch.Tensor | None = None,
    ) -> float:
        # D is frozen here: G's loss needs gradients through D to the images, never
        # D's own (the D step sets those from zero), so its backward skips the weight
        # gradients. The bare D runs, not DDP's wrapper: there is nothing of D to sync.
        with frozen(self.d):
            g_loss = self.loss.g_loss(self._score(fake, batch.fake_labels, net=self.d))
            if self.o.ac_lambda > 0:
                assert batch.fake_labels is not None
                g_loss = g_loss + self.o.ac_lambda * self._class_loss(fake, batch.fake_labels)
            if codes is not None:  # InfoGAN: G makes its code plain to Q
                g_loss = g_loss + self.o.info_lambda * self._class_loss(fake, codes)
        if self.o.ms_lambda > 0 and z is not None:
            g_loss = g_loss + self.o.ms_lambda * mode_seeking(fake, z)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(self.g)
        return float(g_loss.item())

    def step(self, batch: Batch, step: int) -> tuple[float, float | None]:
        """One D update, and a G update every ``n_critic`` steps (D first, as the reports do).

        The latents are drawn for the global batch and sliced per rank, so N
        processes use the latents one process would; the losses returned are
        the means over the ranks.
        """
        world = self.world
        z = torch.randn(batch.real.shape[0] * world.size, self.latent_dim, device=batch.real.device)
        z = world.shard(z)
        if self.o.ms_lambda > 0 and batch.fake_labels is not None:
            batch = replace(batch, fake_labels=pair_labels(batch.fake_labels))
        code = getattr(self.g, "code", None) if self.o.info_lambda > 0 else None
        if self.o.ms_lambda > 0 and code is not None:
            z = pair_codes(z, int(self.g.codes))
        cond = () if batch.fake_labels is None else (batch.fake_labels,)
        g_step = step % self.n_critic == 0
        # no graph through G when only D learns
        with torch.set_grad_enabled(g_step), self.autocast():
            fake = self.g_run(z, *cond)
        fake = fake.float()
        codes = code(z) if code is not None else None
        d_loss = self.discriminator_step(batch, fake, codes)
        g_loss = self.generator_step(batch, fake, z, codes) if g_step else None
        if world.distributed:
            d_loss, g_mean = world.agree(d_loss, g_loss or 0.0)
            d_loss /= world.size
            g_loss = g_mean / world.size if g_loss is not None else None
        return d_loss, g_loss

    def sampling_net(self) -> nn.Module:
        return self.ema.net if self.ema is not None else self.g

    def state_dict(self) -> dict[str, object]:
        return {
            "G": self.g.state_dict(),
            "D": self.d.state_dict(),
            "G_ema": self.ema.net.state_dict() if self.ema is not None else None,
            "ema_updates": self.ema.updates if self.ema is not None else 0,
            "opt_G": self.opt_g.state_dict(),
            "opt_D": self.opt_d.state_dict(),
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.g.load_state_dict(state["G"])  # type: ignore[arg-type]
        self.d.load_state_dict(state["D"])  # type: ignore[arg-type]
        self.opt_g.load_state_dict(state["opt_G"])  # type: ignore[arg-type]
        self.opt_d.load_state_dict(state["opt_D"])  # type: ignore[arg-type]
        if self.ema is not None:
            if state.get("G_ema") is None:
                raise ValueError("the checkpoint has no EMA weights but --ema is set")
            self.ema.net.load_state_dict(state["G_ema"])  # type: ignore[arg-type]
            self.ema.updates = int(state.get("ema_updates", 0) or 0)  # type: ignore[call-overload]
