"""Differentiable augmentation (Zhao et al. 2020, "DiffAugment"), applied to every image D sees.

The same random transform family is applied to real and generated images, in the
discriminator step and in the generator step, so D cannot tell them apart by the
augmentation and G's gradient flows through it. On small data sets (emoji64 has
3,916 images) this keeps D from memorising the training set.

Policies, joined by commas (``--augment color,translation,cutout``):

| name | what it does (per image) |
|---|---|
| ``color`` | brightness +-0.5, saturation x0..2, contrast x0.5..1.5 |
| ``translation`` | shift by up to 1/8 of the side, zero padded |
| ``cutout`` | a zeroed square of half the side at a random place |
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def _brightness(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.rand(x.size(0), 1, 1, 1, device=x.device) - 0.5)


def _saturation(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, device=x.device) * 2) + mean


def _contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, device=x.device) + 0.5) + mean


def _color(x: torch.Tensor) -> torch.Tensor:
    x = _brightness(x)
    if x.size(1) > 1:  # saturation means nothing for one channel
        x = _saturation(x)
    return _contrast(x)


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(
        torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij"
    )
    gy = (gy.unsqueeze(0) + dy + 1).clamp(0, h + 1)
    gx = (gx.unsqueeze(0) + dx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # out-of-range pixels read the zero border
    idx = (gy * (w + 2) + gx).view(b, 1, h * w).expand(-1, x.size(1), -1)
    return padded.flatten(2).gather(2, idx).view_as(x)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    ry, rx = gy - oy + ch // 2, gx - ox + cw // 2  # position inside the square
    inside = (ry >= 0) & (ry < ch) & (rx >= 0) & (rx < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": _color,
    "translation": _translation,
    "cutout": _cutout,
}


def parse_policy(text: str | None) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); unknown names raise ``ValueError``."""
    names = tuple(p.strip() for p in (text or "").split(",") if p.strip())
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(
            f"unknown augmentation {unknown[0]!r}; choose from {', '.join(POLICIES)} "
            "(comma separated)"
        )
    return names


class DiffAugment:
    """``DiffAugment("color,translation,cutout")(x)``: the identity when the policy is empty."""

    def __init__(self, policy: str | None) -> None:
        self.policy = parse_policy(policy)

    def __bool__(self) -> bool:
        return bool(self.policy)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.policy:
            x = POLICIES[name](x)
        return x.contiguous()
