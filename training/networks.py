"""Generator and discriminator architectures, registered by name.

The report architectures (``mlp-small``, ``mlp``, ``mlp-residual``, ``dcgan``,
``dcgan-upsample``, ``cgan``, ``dcgan64``) follow ../shared/docs/seed-systems.md
layer for layer. ``dcgan-cond`` (a convolutional conditional GAN with a
spectral-norm projection discriminator) and ``cdcgan`` (``dcgan``'s networks made
conditional: a label embedding joined to z, one-hot label planes joined to the
image in the BatchNorm D) are the additions beside them.

Every generator maps z [B, latent_dim] (and labels [B] when conditional) to
images [B, C, H, W] in [-1, 1]. Every discriminator returns raw scores
[B] (logits): the reports' final sigmoid is part of the ``bce`` loss
(``training.losses``: ``softplus`` of the scores, BCE of the sigmoid computed
stably); mse, hinge and WGAN-GP use the raw score, as a critic without
sigmoid. Networks do no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import spectral_norm


@dataclass(frozen=True)
class ArchSpec:
    """One registered architecture: how to build G and D, and what it expects."""

    name: str
    generator: type[nn.Module]
    discriminator: type[nn.Module]
    image_shape: tuple[int, int, int]  # (C, H, W) the generator makes
    conditional: bool
    report: str  # where it comes from
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)  # training defaults (lr, betas...)


ARCHITECTURES: dict[str, ArchSpec] = {}


def register(
    name: str,
    *,
    image_shape: tuple[int, int, int],
    conditional: bool = False,
    report: str,
    description: str,
    defaults: dict[str, Any] | None = None,
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Register a generator class; its discriminator is its ``Discriminator`` attribute."""

    def wrap(g: type[nn.Module]) -> type[nn.Module]:
        ARCHITECTURES[name] = ArchSpec(
            name=name,
            generator=g,
            discriminator=g.Discriminator,  # type: ignore[attr-defined]
            image_shape=image_shape,
            conditional=conditional,
            report=report,
            description=description,
            defaults=dict(defaults or {}),
        )
        return g

    return wrap


def get_arch(name: str) -> ArchSpec:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise KeyError(
            f"unknown architecture {name!r}; choose one of {', '.join(sorted(ARCHITECTURES))}"
        ) from None


def build_generator(arch: str, **kwargs: Any) -> nn.Module:
    return get_arch(arch).generator(**kwargs)


def build_discriminator(arch: str, **kwargs: Any) -> nn.Module:
    return get_arch(arch).discriminator(**kwargs)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def apply_spectral_norm(net: nn.Module) -> nn.Module:
    """Wrap every Linear/Conv layer of ``net`` (not yet normalised) in spectral norm."""
    for name, child in list(net.named_children()):
        if isinstance(child, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if not hasattr(child, "weight_orig"):
                setattr(net, name, spectral_norm(child))
        elif not isinstance(child, nn.Embedding):
            apply_spectral_norm(child)
    return net


def init_dcgan_weights(net: nn.Module) -> None:
    """The DCGAN paper's init: conv weights N(0, 0.02), BatchNorm N(1, 0.02) and bias 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = getattr(m, "weight_orig", m.weight)
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class _Critic(nn.Module):
    """A discriminator: raw scores [B]; the ``bce`` loss applies the reports' sigmoid."""


# --------------------------------------------------------------------------- 1. mlp-small
class MLPSmallDiscriminator(_Critic):
    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28)) -> None:
        super().__init__()
        size = image_shape[0] * image_shape[1] * image_shape[2]
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(size, 128),  # 784 -> 128
            nn.LeakyReLU(0.2),
            nn.Linear(128, 1),  # one real/fake score
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


@register(
    "mlp-small",
    image_shape=(1, 28, 28),
    report="A (Fashion-MNIST)",
    description="one-hidden-layer MLP G and D (128 units)",
    defaults={"beta1": 0.9, "beta2": 0.999},
)
class MLPSmallGenerator(nn.Module):
    Discriminator = MLPSmallDiscriminator

    def __init__(self, latent_dim: int = 100, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        self.latent_dim = latent_dim  # size of z
        self.image_shape = tuple(image_shape)  # (C, H, W) of the output
        size = image_shape[0] * image_shape[1] * image_shape[2]
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 128),  # 100 -> 128
            nn.LeakyReLU(0.2),
            nn.Linear(128, size),  # 128 -> 784
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)


# --------------------------------------------------------------------------- 2. mlp
class MLPDiscriminator(_Critic):
    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28)) -> None:
        super().__init__()
        size = image_shape[0] * image_shape[1] * image_shape[2]
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(size, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


@register(
    "mlp",
    image_shape=(1, 28, 28),
    report="B (MNIST, eriklindernoren-style gan.py)",
    description="MLP 100-128-256-512-784 G, 784-512-256-1 D",
)
class MLPGenerator(nn.Module):
    Discriminator = MLPDiscriminator

    def __init__(
        self,
        latent_dim: int = 100,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        batch_norm: bool = False,  # the common BatchNorm1d(eps 0.8) variant on hidden layers 2-3
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        size = image_shape[0] * image_shape[1] * image_shape[2]

        def block(i: int, o: int, norm: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Linear(i, o)]
            if norm:
                layers.append(nn.BatchNorm1d(o, 0.8))
            layers.append(nn.LeakyReLU(0.2))
            return layers

        self.net = nn.Sequential(
            *block(latent_dim, 128, False),
            *block(128, 256, batch_norm),
            *block(256, 512, batch_norm),
            nn.Linear(512, size),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)


# --------------------------------------------------------------------------- 3. dcgan
class FeatureHeads(nn.Module):
    """Discriminator heads on a frozen, pretrained feature network (Projected GAN,
    Sauer et al. 2021; Vision-aided GAN, Kumari et al. 2022), here the data set's own
    domain classifier (``training/metrics/classifier.py``, trained on its train split).

    The classifier runs in eval mode with its weights frozen; it is not a submodule,
    so it is neither trained, nor in D's state dict, nor touched by D's init or
    spectral norm: it is loaded from its committed asset whenever D is built. Three
    small trainable heads score its features at 14x14, at 7x7 and at the penultimate
    128-d layer; each gives one logit. G's gradient reaches the image through the
    frozen classifier, so G learns from features made to tell the data's classes
    apart from the first step, where a D learning from scratch starts from noise.
    """

    def __init__(self, dataset: str, width: int = 64) -> None:
        super().__init__()
        from training.metrics.classifier import load_classifier

        clf = copy.deepcopy(load_classifier(dataset).net).eval().requires_grad_(False)
        self._frozen = (clf,)  # a tuple: not registered, so not in state_dict() or train()
        c = int(clf.kwargs["width"])

        def head(conv: nn.Module) -> nn.Module:  # conv to width @ 7x7, then one logit
            return nn.Sequential(conv, nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(width * 49, 1))

        self.at14 = head(nn.Conv2d(c, width, 4, 2, 1))  # block 1: c @ 14x14
        self.at7 = head(nn.Conv2d(2 * c, width, 3, 1, 1))  # block 2: 2c @ 7x7
        self.at_penultimate = nn.Linear(clf.feature_dim, 1)

    @property
    def classifier(self) -> nn.Module:
        return self._frozen[0]

    def _apply(self, fn: Any, recurse: bool = True) -> FeatureHeads:  # .to(), .cuda()
        super()._apply(fn, recurse)
        self._frozen[0]._apply(fn, recurse)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, 3]: one per head."""
        f = self.classifier.features  # 3 conv blocks of 4 layers, then the 128-d layer
        h14 = f[0:4](x)
        h7 = f[4:8](h14)
        pen = f[8:](h7)
        return torch.cat([self.at14(h14), self.at7(h7), self.at_penultimate(pen)], dim=1)


class DCGANDiscriminator(_Critic):
    """The reports' two-conv D. ``features="<data set>"`` adds :class:`FeatureHeads` on
    that data set's domain classifier: the scores are then [B, 4] (this D's logit and
    the three heads'), and every loss averages over them; with ``pixels=False`` the
    heads alone score ([B, 3]; Projected GAN's D, no network on the pixels)."""

    def __init__(
        self, channels: int = 1, width: int = 64, features: str = "", pixels: bool = True
    ) -> None:
        super().__init__()
        if not pixels and not features:
            raise ValueError("pixels=False needs features=<data set>: nothing would score")
        self.net = (
            nn.Sequential(
                nn.Conv2d(channels, width, 4, 2, 1),  # 28 -> 14
                nn.LeakyReLU(0.2),
                nn.Conv2d(width, 2 * width, 4, 2, 1),  # 14 -> 7
                nn.BatchNorm2d(2 * width),
                nn.LeakyReLU(0.2),
                nn.Flatten(),
                nn.Linear(2 * width * 7 * 7, 1),
            )
            if pixels
            else None
        )
        self.features = FeatureHeads(features) if features else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.features is None:
            assert self.net is not None
            return self.net(x).squeeze(1)
        heads = self.features(x)
        return heads if self.net is None else torch.cat([self.net(x), heads], dim=1)


@register(
    "dcgan",
    image_shape=(1, 28, 28),
    report="A (Fashion-MNIST)",
    description="transposed-conv G 7->14->28, two-conv D",
)
class DCGANGenerator(nn.Module):
    Discriminator = DCGANDiscriminator

    def __init__(self, latent_dim: int = 100, channels: int = 1, width: int = 64) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = (channels, 28, 28)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 2 * width, 7, 1, 0, bias=False),  # 1 -> 7
            nn.BatchNorm2d(2 * width),
            nn.ReLU(True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False),  # 14 -> 28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


# --------------------------------------------------------------------------- 4. dcgan-upsample
class DCGANUpsampleDiscriminator(_Critic):
    def __init__(self, channels: int = 1) -> None:
        super().__init__()

        def block(i: int, o: int, bn: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [
                nn.Conv2d(i, o, 3, 2, 1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Dropout2d(0.25),
            ]
            if bn:
                layers.append(nn.BatchNorm2d(o, 0.8))
            return layers

        self.net = nn.Sequential(
            *block(channels, 16, False),  # 28 -> 14
            *block(16, 32, True),  # 14 -> 7
            *block(32, 64, True),  # 7 -> 4
            *block(64, 128, True),  # 4 -> 2
            nn.Flatten(),
            nn.Linear(128 * 2 * 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


@register(
    "dcgan-upsample",
    image_shape=(1, 28, 28),
    report="E (Fashion-MNIST)",
    description="Linear -> 128x7x7, Upsample+Conv G; four-block conv D with dropout",
)
class DCGANUpsampleGenerator(nn.Module):
    Discriminator = DCGANUpsampleDiscriminator

    def __init__(self, latent_dim: int = 100, channels: int = 1) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = (channels, 28, 28)
        self.l1 = nn.Linear(latent_dim, 128 * 7 * 7)
        self.net = nn.Sequential(
            nn.BatchNorm2d(128),
            nn.Upsample(scale_factor=2),  # 7 -> 14
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            nn.BatchNorm2d(128, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),  # 14 -> 28
            nn.Conv2d(128, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, channels, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.l1(z).view(z.shape[0], 128, 7, 7))


# --------------------------------------------------------------------------- 5. mlp-residual
class MLPResidualDiscriminator(_Critic):
    """Spectral-normalised MLP, split into ``features`` and ``head`` for feature matching."""

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28)) -> None:
        super().__init__()
        size = image_shape[0] * image_shape[1] * image_shape[2]
        self.features = nn.Sequential(
            nn.Flatten(),
            spectral_norm(nn.Linear(size, 512)),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.3),
            spectral_norm(nn.Linear(512, 256)),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.3),
        )
        self.head = spectral_norm(nn.Linear(256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


@register(
    "mlp-residual",
    image_shape=(1, 28, 28),
    report="E (Fashion-MNIST)",
    description="BN+dropout MLP G with a Linear(100,1024) residual shortcut; SN MLP D",
)
class MLPResidualGenerator(nn.Module):
    Discriminator = MLPResidualDiscriminator

    def __init__(self, latent_dim: int = 100, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        size = image_shape[0] * image_shape[1] * image_shape[2]

        def block(i: int, o: int) -> list[nn.Module]:
            return [nn.Linear(i, o), nn.BatchNorm1d(o), nn.LeakyReLU(0.2), nn.Dropout(0.2)]

        self.trunk = nn.Sequential(
            *block(latent_dim, 128), *block(128, 256), *block(256, 512), *block(512, 1024)
        )
        self.shortcut = nn.Sequential(nn.Linear(latent_dim, 1024), nn.BatchNorm1d(1024))
        self.out = nn.Sequential(nn.Linear(1024, size), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.trunk(z) + self.shortcut(z)).view(-1, *self.image_shape)


# --------------------------------------------------------------------------- 6. cgan
class CGANDiscriminator(_Critic):
    def __init__(
        self, num_classes: int = 10, image_shape: tuple[int, int, int] = (1, 28, 28)
    ) -> None:
        super().__init__()
        size = image_shape[0] * image_shape[1] * image_shape[2]
        self.label_embedding = nn.Embedding(num_classes, num_classes)
        self.net = nn.Sequential(
            nn.Linear(size + num_classes, 512),  # 794 -> 512
            nn.LeakyReLU(0.2),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x.flatten(1), self.label_embedding(labels)], dim=1)
        return self.net(h).squeeze(1)


@register(
    "cgan",
    image_shape=(1, 28, 28),
    conditional=True,
    report="C (Fashion-MNIST, targeted generation of clothing)",
    description="label-embedding MLP cGAN: G 110-128-256-512-1024-784, D 794-512-512-512-1",
)
class CGANGenerator(nn.Module):
    Discriminator = CGANDiscriminator

    def __init__(
        self,
        latent_dim: int = 100,
        num_classes: int = 10,
        image_shape: tuple[int, int, int] = (1, 28, 28),
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.image_shape = tuple(image_shape)
        size = image_shape[0] * image_shape[1] * image_shape[2]
        self.label_emb = nn.Embedding(num_classes, num_classes)

        def block(i: int, o: int, norm: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Linear(i, o)]
            if norm:
                layers.append(nn.BatchNorm1d(o, 0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.net = nn.Sequential(
            *block(latent_dim + num_classes, 128, norm=False),
            *block(128, 256),
            *block(256, 512),
            *block(512, 1024),
            nn.Linear(1024, size),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.label_emb(labels), z], dim=1)
        return self.net(h).view(-1, *self.image_shape)


# --------------------------------------------------------------------------- 7. dcgan64
NORMS = ("batch", "layer", "none")


def _norm2d(kind: str, channels: int) -> list[nn.Module]:
    """A critic's normalisation: BatchNorm (the reports'), layer norm over C, H, W
    (GroupNorm with one group; what WGAN-GP's authors use, since BatchNorm mixes the
    samples its gradient penalty treats one by one), or none."""
    if kind == "batch":
        return [nn.BatchNorm2d(channels)]
    if kind == "layer":
        return [nn.GroupNorm(1, channels)]
    if kind == "none":
        return []
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, not {kind!r}")


class DCGAN64Discriminator(_Critic):
    def __init__(self, channels: int = 3, width: int = 64, norm: str = "batch") -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1, bias=False),  # 64 -> 32
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),  # 32 -> 16
            *_norm2d(norm, width * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width * 2, width * 4, 4, 2, 1, bias=False),  # 16 -> 8
            *_norm2d(norm, width * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width * 4, width * 8, 4, 2, 1, bias=False),  # 8 -> 4
            *_norm2d(norm, width * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width * 8, 1, 4, 1, 0, bias=False),  # 4 -> 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


@register(
    "dcgan64",
    image_shape=(3, 64, 64),
    report="D (anime faces, 64x64 RGB; DCGAN and WGAN-GP)",
    description="classic 64x64 DCGAN: four ConvT blocks 4->32, ConvT to 64x64x3",
)
class DCGAN64Generator(nn.Module):
    Discriminator = DCGAN64Discriminator

    def __init__(self, latent_dim: int = 100, channels: int = 3, width: int = 64) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = (channels, 64, 64)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, width * 8, 4, 1, 0, bias=False),  # 1 -> 4
            nn.BatchNorm2d(width * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(width * 8, width * 4, 4, 2, 1, bias=False),  # 4 -> 8
            nn.BatchNorm2d(width * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1, bias=False),  # 8 -> 16
            nn.BatchNorm2d(width * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False),  # 16 -> 32
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False),  # 32 -> 64
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


# --------------------------------------------------------------------------- dcgan-cond
def minibatch_stddev(h: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """One feature per image: the standard deviation of ``h`` over its group of images
    (Karras et al. 2018), averaged over channels and positions. [B, ...] -> [B, 1].

    A batch of near-copies scores a low value, so D can tell a G that ignores z from
    the data's variety (a remedy for per-class collapse in conditional GANs)."""
    b = h.shape[0]
    g = min(group_size, b)
    while b % g:
        g -= 1
    y = h.reshape(g, b // g, -1)  # [G, B/G, F]: image i is in group i % (B/G)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=1)  # [B/G]
    return y.repeat(g).unsqueeze(1)


class ProjectionDiscriminator(_Critic):
    """Conv features + a projection head (Miyato & Koyama 2018), spectral norm throughout.

    ``mbstd=True`` adds the minibatch standard deviation of the features as one more
    input of the unconditional score (:func:`minibatch_stddev`)."""

    def __init__(
        self, num_classes: int = 10, channels: int = 1, width: int = 64, mbstd: bool = False
    ) -> None:
        super().__init__()
        self.mbstd = mbstd
        self.features = nn.Sequential(
            spectral_norm(nn.Conv2d(channels, width, 3, 1, 1)),  # 28
            nn.LeakyReLU(0.1),
            spectral_norm(nn.Conv2d(width, width, 4, 2, 1)),  # 28 -> 14
            nn.LeakyReLU(0.1),
            spectral_norm(nn.Conv2d(width, 2 * width, 3, 1, 1)),
            nn.LeakyReLU(0.1),
            spectral_norm(nn.Conv2d(2 * width, 2 * width, 4, 2, 1)),  # 14 -> 7
            nn.LeakyReLU(0.1),
            spectral_norm(nn.Conv2d(2 * width, 4 * width, 3, 1, 1)),
            nn.LeakyReLU(0.1),
        )
        self.linear = spectral_norm(nn.Linear(4 * width + int(mbstd), 1))  # unconditional score
        self.embed = spectral_norm(nn.Embedding(num_classes, 4 * width))  # class projection

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        h = f.sum(dim=(2, 3))  # global sum pooling -> [B, 4*width]
        score_in = torch.cat([h, minibatch_stddev(f)], dim=1) if self.mbstd else h
        return self.linear(score_in).squeeze(1) + (self.embed(labels) * h).sum(dim=1)


@register(
    "dcgan-cond",
    image_shape=(1, 28, 28),
    conditional=True,
    report="ganserve (beyond the reports)",
    description="conv cGAN: label-embedding + z -> 7x7 -> 14 -> 28 G; SN projection D",
    defaults={"loss": "hinge", "beta1": 0.0, "beta2": 0.9},
)
class DCGANCondGenerator(nn.Module):
    Discriminator = ProjectionDiscriminator

    def __init__(
        self,
        latent_dim: int = 100,
        num_classes: int = 10,
        channels: int = 1,
        width: int = 64,
        embed_dim: int = 50,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.image_shape = (channels, 28, 28)
        self.width = width
        self.label_emb = nn.Embedding(num_classes, embed_dim)
        self.fc = nn.Sequential(
            nn.Linear(latent_dim + embed_dim, 4 * width * 7 * 7, bias=False),
            nn.BatchNorm1d(4 * width * 7 * 7),
            nn.ReLU(True),
        )
        self.net = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(2 * width),
            nn.ReLU(True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),  # 14 -> 28
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.Conv2d(width, channels, 3, 1, 1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.label_emb(labels)], dim=1))
        return self.net(h.view(z.shape[0], 4 * self.width, 7, 7))


# --------------------------------------------------------------------------- cdcgan
def classifier_head(channels: int, width: int, outputs: int) -> nn.Module:
    """A small classifier of 28x28 images with a trunk of its own: two convs of half
    ``width``, no BatchNorm (it judges real and generated batches alike), one linear
    layer to ``outputs`` logits. AC-GAN's auxiliary classifier and InfoGAN's Q."""
    half = max(width // 2, 8)
    return nn.Sequential(
        nn.Conv2d(channels, half, 4, 2, 1),  # 28 -> 14
        nn.LeakyReLU(0.2),
        nn.Conv2d(half, 2 * half, 4, 2, 1),  # 14 -> 7
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(2 * half * 7 * 7, outputs),
    )


class CDCGANDiscriminator(_Critic):
    """``dcgan``'s two-conv D (BatchNorm included), told the label one of two ways.

    - ``conditioning="concat"`` (the default): one-hot label planes joined to the
      image as extra input channels (Mirza & Osindero's cGAN, made convolutional).
    - ``conditioning="projection"``: ``linear(h) + <embed(label), h>`` on the
      flattened 7x7 features h (Miyato & Koyama 2018).
    - ``conditioning="none"``: the score never sees the label; the class reaches G
      only through the auxiliary classifier (AC-GAN as Odena et al. 2017 built it:
      one D judging real or fake, a classifier telling the class), so it needs
      ``aux_classifier=True`` (``--ac-lambda`` above 0).

    ``mbstd=True`` adds the minibatch standard deviation of h as one more input of
    the score (:func:`minibatch_stddev`).

    ``aux_classifier=True`` adds a classifier that never sees the label
    (:meth:`classify`: the logits of the classes), the auxiliary classifier of
    AC-GAN (Odena et al. 2017) made a head of its own (:func:`classifier_head`)
    so that the label planes cannot give the answer away."""

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 1,
        width: int = 64,
        conditioning: str = "concat",
        mbstd: bool = False,
        aux_classifier: bool = False,
    ) -> None:
        super().__init__()
        if conditioning not in ("concat", "projection", "none"):
            raise ValueError(
                f"conditioning must be concat, projection or none, not {conditioning!r}"
            )
        if conditioning == "none" and not aux_classifier:
            raise ValueError(
                "conditioning none needs the auxiliary classifier (--ac-lambda above 0): "
                "without it nothing tells G the class"
            )
        self.num_classes = num_classes
        self.conditioning = conditioning
        self.mbstd = mbstd
        feat = 2 * width * 7 * 7
        planes = num_classes if conditioning == "concat" else 0
        self.features = nn.Sequential(
            nn.Conv2d(channels + planes, width, 4, 2, 1),  # 28 -> 14
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),  # 14 -> 7
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.linear = nn.Linear(feat + int(mbstd), 1)
        if conditioning == "projection":
            self.embed = nn.Embedding(num_classes, feat)
            bound = feat**-0.5  # the scale nn.Linear gives its weights, not N(0, 1)
            nn.init.uniform_(self.embed.weight, -bound, bound)
        self.classifier = classifier_head(channels, width, num_classes) if aux_classifier else None

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The auxiliary classifier's logits for the images ``x`` (no label given)."""
        if self.classifier is None:
            raise ValueError("this discriminator has no auxiliary classifier")
        return self.classifier(x)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.conditioning == "concat":  # "none": the label goes unused here
            onehot = nn.functional.one_hot(labels, self.num_classes).to(x.dtype)
            planes = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = torch.cat([x, planes], dim=1)
        h = self.features(x)
        score_in = torch.cat([h, minibatch_stddev(h)], dim=1) if self.mbstd else h
        score = self.linear(score_in).squeeze(1)
        if self.conditioning == "projection":
            score = score + (self.embed(labels) * h).sum(dim=1)
        return score


@register(
    "cdcgan",
    image_shape=(1, 28, 28),
    conditional=True,
    report="ganserve (beyond the reports)",
    description="conv cGAN: dcgan's G with a label embedding joined to z; dcgan's BatchNorm D "
    "with label planes joined to the image",
)
class CDCGANGenerator(nn.Module):
    Discriminator = CDCGANDiscriminator

    def __init__(
        self,
        latent_dim: int = 100,
        num_classes: int = 10,
        channels: int = 1,
        width: int = 64,
        embed_dim: int = 50,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.image_shape = (channels, 28, 28)
        self.label_emb = nn.Embedding(num_classes, embed_dim)
        # dcgan's generator, its input widened by the label embedding
        self.net = DCGANGenerator(latent_dim + embed_dim, channels, width).net

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, self.label_emb(labels)], dim=1)
        return self.net(h.view(z.shape[0], -1, 1, 1))


# --------------------------------------------------------------------------- infogan
class InfoGANDiscriminator(DCGANDiscriminator):
    """``dcgan``'s D and InfoGAN's Q (:meth:`classify`): a head of its own that tells
    which discrete code G drew an image from."""

    def __init__(self, channels: int = 1, width: int = 64, codes: int = 10) -> None:
        super().__init__(channels, width)
        self.q = classifier_head(channels, width, codes)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.q(x)


@register(
    "infogan",
    image_shape=(1, 28, 28),
    report="ganserve (beyond the reports)",
    description="dcgan with a discrete code read from its latent (InfoGAN, no labels): "
    "the argmax of z's first 10 values picks a learned embedding joined to z; D's Q head "
    "learns to tell the code from the image",
)
class InfoGANGenerator(nn.Module):
    """An unconditional G with a discrete code (Chen et al. 2016, InfoGAN), no labels used.

    The code is a function of the latent itself, ``argmax(z[:codes])`` (uniform over the
    codes for z ~ N(0, I)), so the model is served as any unconditional one: z in,
    images out. Training adds InfoGAN's term (``--info-lambda``): G and D's Q head
    minimise the cross-entropy of Q's guess of the code, so each code comes to stand for
    a mode of the data and the continuous latent no longer has to bridge the modes
    (the in-between, ambiguous images of a plain unconditional G)."""

    Discriminator = InfoGANDiscriminator

    def __init__(
        self,
        latent_dim: int = 100,
        channels: int = 1,
        width: int = 64,
        codes: int = 10,
        embed_dim: int = 50,
    ) -> None:
        super().__init__()
        if not 2 <= codes <= latent_dim:
            raise ValueError(f"codes must be in [2, latent_dim], not {codes}")
        self.latent_dim = latent_dim
        self.codes = codes
        self.image_shape = (channels, 28, 28)
        self.code_emb = nn.Embedding(codes, embed_dim)
        self.net = DCGANGenerator(latent_dim + embed_dim, channels, width).net

    def code(self, z: torch.Tensor) -> torch.Tensor:
        """The discrete code of each latent: the index of the largest of its first values."""
        return z[:, : self.codes].argmax(dim=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, self.code_emb(self.code(z))], dim=1)
        return self.net(h.view(z.shape[0], -1, 1, 1))
