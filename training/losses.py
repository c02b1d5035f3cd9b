"""Adversarial losses, chosen per run: ``bce``, ``mse`` (LSGAN), ``hinge``, ``wgan-gp``.

Discriminators return raw scores; ``bce`` applies the sigmoid through
``softplus`` (BCE with real=1, fake=0, G trained against "real"). Each loss
also names the optimizer its source trained with (``wgan-gp``: RMSprop, as in
the anime-faces report, with 5 critic steps per G step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Loss:
    name: str
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (real scores, fake scores)
    g_loss: Callable[[torch.Tensor], torch.Tensor]  # (fake scores)
    gradient_penalty: bool = False
    optimizer: str = "adam"
    n_critic: int = 1


LOSSES: dict[str, Loss] = {
    "bce": Loss(
        "bce",
        d_loss=lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
        g_loss=lambda f: F.softplus(-f).mean(),
    ),
    "mse": Loss(
        "mse",
        d_loss=lambda r, f: 0.5 * ((r - 1).square().mean() + f.square().mean()),
        g_loss=lambda f: (f - 1).square().mean(),
    ),
    "hinge": Loss(
        "hinge",
        d_loss=lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(),
        g_loss=lambda f: -f.mean(),
    ),
    "wgan-gp": Loss(
        "wgan-gp",
        d_loss=lambda r, f: f.mean() - r.mean(),
        g_loss=lambda f: -f.mean(),
        gradient_penalty=True,
        optimizer="rmsprop",
        n_critic=5,
    ),
}


def get_loss(name: str) -> Loss:
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None


def gradient_penalty(
    critic: Callable[..., torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *cond: torch.Tensor,
) -> torch.Tensor:
    """WGAN-GP: E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates of real and fake."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(x_hat, *cond)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()
