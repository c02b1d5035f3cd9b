"""The training loop: ``training_loop(options)`` knows nothing of the command line.

A run writes a numbered directory (``runs/00003-dcgan-fashion-mnist/``) holding
``training_options.json``, ``stats.jsonl`` (losses per logged step and per
epoch, images/s), ``losses.png`` (D and G per epoch), ``samples-<epoch>.png``
grids from a fixed seed, and ``checkpoint-<epoch>.pt`` files that hold the
weights, constructor arguments, optimizer states, RNG states and epoch, so a
run resumes exactly and export rebuilds G from the file alone.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganserve.grid import encode_png, make_grid
from ganserve.latent import make_latents
from training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from training.data import load_dataset
from training.losses import get_loss, gradient_penalty
from training.networks import (
    apply_spectral_norm,
    build_discriminator,
    build_generator,
    get_arch,
    init_dcgan_weights,
)


@dataclass
class TrainOptions:
    """Every option of a run; written to ``training_options.json``."""

    arch: str = "dcgan"
    dataset: str = "fashion-mnist"
    data_dir: str | None = None  # torchvision layout; None: $GANSERVE_DATA_DIR or ../shared/data
    download: bool = False  # let torchvision download the data set (needs a network)
    limit: int | None = None  # use only the first N training images
    epochs: int = 30
    batch_size: int = 64
    loss: str | None = None  # bce | mse | hinge | wgan-gp; None: the architecture's default (bce)
    optimizer: str | None = None  # adam | rmsprop; None: the loss's default
    lr: float = 2e-4
    beta1: float | None = None  # None: 0.5 (the architecture may override)
    beta2: float | None = None  # None: 0.999
    n_critic: int | None = None  # D steps per G step; None: the loss's default
    gp_lambda: float = 10.0
    spectral_norm: bool = False  # spectral norm on every D layer
    ema: float = 0.0  # decay of an EMA copy of G's weights (0: off; e.g. 0.999)
    dcgan_init: bool = False  # N(0, 0.02) init (the WGAN-GP report's)
    g_kwargs: dict[str, Any] = field(default_factory=dict)
    d_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    sample_seed: int = 0  # the fixed latent batch of the sample grids
    device: str = "auto"
    out: str = "runs"
    sample_every: int = 1  # epochs
    checkpoint_every: int = 10  # epochs (the last epoch always gets one)
    log_every: int = 100  # steps
    progress: bool = True
    resume: str | None = None  # checkpoint to continue from

    def resolved(self) -> TrainOptions:
        """Fill the ``None`` defaults from the architecture and the loss."""
        spec = get_arch(self.arch)
        o = dataclasses.replace(self)
        o.loss = o.loss or spec.defaults.get("loss", "bce")
        loss = get_loss(o.loss)
        o.optimizer = o.optimizer or loss.optimizer
        if o.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"unknown optimizer {o.optimizer!r}; choose adam or rmsprop")
        o.beta1 = spec.defaults.get("beta1", 0.5) if o.beta1 is None else o.beta1
        o.beta2 = spec.defaults.get("beta2", 0.999) if o.beta2 is None else o.beta2
        o.n_critic = o.n_critic or loss.n_critic
        for name in ("epochs", "batch_size", "n_critic", "sample_every", "checkpoint_every"):
            if getattr(o, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if not 0 <= o.ema < 1:
            raise ValueError("--ema must be in [0, 1)")
        return o


def command_line(options: TrainOptions) -> str:
    """The ``python -m training.train`` command that asks for ``options`` (defaults left out)."""
    default = TrainOptions()
    skip = {"progress", "resume", "out"}
    parts = ["python -m training.train"]
    for f in dataclasses.fields(TrainOptions):
        value = getattr(options, f.name)
        if f.name in skip or value == getattr(default, f.name):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "")
        elif isinstance(value, dict):
            parts.append(f"{flag} '{json.dumps(value)}'")
        else:
            parts.append(f"{flag} {value}")
    return " ".join(p for p in parts if p)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def next_run_dir(out: str | Path, arch: str, dataset: str) -> Path:
    """``out/NNNNN-arch-dataset``, numbered one above the highest run there."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in out.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{arch}-{dataset}").strip("-")
    run = out / f"{max(ids, default=-1) + 1:05d}-{slug}"
    run.mkdir()
    return run


def to_uint8_nhwc(x: torch.Tensor) -> np.ndarray:
    """G output in [-1, 1] [B, C, H, W] -> uint8 [B, H, W, C], the export graph's mapping."""
    y = ((x.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).cpu().numpy()


class EMA:
    """An exponential moving average of G's weights (buffers copied as they are)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.net = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        ema_p = list(self.net.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in net.parameters()], 1 - self.decay)
        for b_ema, b in zip(self.net.buffers(), net.buffers(), strict=True):
            b_ema.copy_(b)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def plot_losses(epochs: list[dict[str, Any]], path: Path, title: str) -> None:
    """D and G loss per epoch, like the reports' figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    xs = [e["epoch"] for e in epochs]
    ax.plot(xs, [e["d_loss"] for e in epochs], marker="o", label="D loss")
    ax.plot(xs, [e["g_loss"] for e in epochs], marker="o", label="G loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean over the epoch)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@torch.no_grad()
def sample_grid(
    g: nn.Module, *, seed: int, num_classes: int, conditional: bool, device: torch.device
) -> np.ndarray:
    """A fixed-seed grid: 64 images (8 x 8), or 8 per class (a row per class) when conditional."""
    was_training = g.training
    g.eval()
    if conditional:
        z = torch.from_numpy(make_latents(seed, 8, g.latent_dim)).repeat(num_classes, 1)
        labels = torch.arange(num_classes).repeat_interleave(8)
        x = g(z.to(device), labels.to(device))
    else:
        x = g(torch.from_numpy(make_latents(seed, 64, g.latent_dim)).to(device))
    g.train(was_training)
    return make_grid(to_uint8_nhwc(x), 8, padding=2)


def _jsonable(o: TrainOptions) -> dict[str, Any]:
    return dataclasses.asdict(o)


def training_loop(options: TrainOptions, *, log=print) -> Path:
    """Train one GAN as ``options`` say; returns the run directory."""
    resume_ckpt: dict[str, Any] | None = None
    if options.resume:
        resume_ckpt = load_checkpoint(options.resume)
        if resume_ckpt["arch"] != options.arch:
            raise CheckpointError(
                f"{options.resume} holds a {resume_ckpt['arch']!r} model, not {options.arch!r}"
            )
    o = options.resolved()
    spec = get_arch(o.arch)
    loss = get_loss(o.loss)
    device = pick_device(o.device)
    torch.manual_seed(o.seed)

    data = load_dataset(
        o.dataset,
        image_shape=spec.image_shape,
        data_dir=o.data_dir,
        device=device,
        download=o.download,
        limit=o.limit,
        seed=o.seed,
    )
    if spec.conditional and data.labels is None:
        raise ValueError(
            f"{o.arch} is conditional, but {o.dataset} has no labels "
            "(a labelled folder has one subfolder per class)"
        )
    if len(data) < o.batch_size:
        raise ValueError(
            f"{o.dataset} has {len(data)} images, fewer than --batch-size {o.batch_size}"
        )

    g_kwargs = dict(o.g_kwargs)
    d_kwargs = dict(o.d_kwargs)
    if spec.conditional:
        g_kwargs.setdefault("num_classes", data.num_classes)
        d_kwargs.setdefault("num_classes", data.num_classes)
    g = build_generator(o.arch, **g_kwargs).to(device)
    d = build_discriminator(o.arch, **d_kwargs)
    if o.spectral_norm:
        apply_spectral_norm(d)
    d = d.to(device)
    if o.dcgan_init:
        init_dcgan_weights(g)
        init_dcgan_weights(d)

    if o.optimizer == "adam":
        opt_g = torch.optim.Adam(g.parameters(), lr=o.lr, betas=(o.beta1, o.beta2))
        opt_d = torch.optim.Adam(d.parameters(), lr=o.lr, betas=(o.beta1, o.beta2))
    else:
        opt_g = torch.optim.RMSprop(g.parameters(), lr=o.lr)
        opt_d = torch.optim.RMSprop(d.parameters(), lr=o.lr)
    ema = EMA(g, o.ema) if o.ema > 0 else None

    start_epoch, step, train_seconds = 0, 0, 0.0
    epoch_stats: list[dict[str, Any]] = []
    if resume_ckpt is not None:
        try:
            g.load_state_dict(resume_ckpt["G"])
            d.load_state_dict(resume_ckpt["D"])
            opt_g.load_state_dict(resume_ckpt["opt_G"])
            opt_d.load_state_dict(resume_ckpt["opt_D"])
            if ema is not None:
                if resume_ckpt.get("G_ema") is None:
                    raise CheckpointError("checkpoint has no EMA weights but --ema is set")
                ema.net.load_state_dict(resume_ckpt["G_ema"])
        except (RuntimeError, ValueError, KeyError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{o.resume} does not fit these options: {msg}") from None
        start_epoch, step = int(resume_ckpt["epoch"]), int(resume_ckpt.get("step", 0))
        train_seconds = float(resume_ckpt.get("stats", {}).get("train_seconds", 0.0))
        epoch_stats = list(resume_ckpt.get("epoch_stats", []))
        if "rng" in resume_ckpt:
            _set_rng_state(resume_ckpt["rng"])
        if start_epoch >= o.epochs:
            raise ValueError(
                f"{o.resume} already has {start_epoch} epochs; ask for --epochs > {start_epoch}"
            )

    run_dir = next_run_dir(o.out, o.arch, o.dataset)
    (run_dir / "training_options.json").write_text(
        json.dumps(
            {**_jsonable(o), "resolved_device": str(device), "dataset_info": data.describe()},
            indent=2,
        )
    )
    stats_file = (run_dir / "stats.jsonl").open("a")
    n_batches = len(data) // o.batch_size
    latent_dim = g.latent_dim
    num_classes = data.num_classes
    log(
        f"run {run_dir}: {o.arch} on {o.dataset} ({len(data)} images), "
        f"{o.loss} loss, device {device}"
    )

    def emit(record: dict[str, Any]) -> None:
        stats_file.write(json.dumps(record) + "\n")
        stats_file.flush()

    from tqdm import tqdm

    g.train()
    d.train()
    perm_gen = torch.Generator(device="cpu")
    for epoch in range(start_epoch, o.epochs):
        perm_gen.manual_seed(o.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(data), generator=perm_gen).to(device)
        d_sum = g_sum = 0.0
        g_steps = 0
        t0 = time.perf_counter()
        bar = tqdm(
            range(n_batches),
            desc=f"epoch {epoch + 1}/{o.epochs}",
            disable=not o.progress,
            file=sys.stderr,
            leave=False,
        )
        for i in bar:
            idx = perm[i * o.batch_size : (i + 1) * o.batch_size]
            real = data.images[idx]
            cond: tuple[torch.Tensor, ...] = ()
            if spec.conditional:
                assert data.labels is not None
                real_labels = data.labels[idx]
                fake_labels = torch.randint(0, num_classes, (o.batch_size,), device=device)
                cond = (fake_labels,)
            z = torch.randn(o.batch_size, latent_dim, device=device)
            fake = g(z, *cond)

            # D step: real and fake.detach(), D first
            real_scores = d(real, real_labels) if spec.conditional else d(real)
            fake_scores = d(fake.detach(), *cond)
            d_loss = loss.d_loss(real_scores, fake_scores)
            if loss.gradient_penalty:
                gp_cond = (real_labels,) if spec.conditional else ()
                d_loss = d_loss + o.gp_lambda * gradient_penalty(d, real, fake.detach(), *gp_cond)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            d_sum += d_loss.item()

            # G step every n_critic D steps, against "real" (non-saturating)
            if step % o.n_critic == 0:
                g_loss = loss.g_loss(d(fake, *cond))
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                if ema is not None:
                    ema.update(g)
                g_sum += g_loss.item()
                g_steps += 1
            step += 1
            if step % o.log_every == 0:
                elapsed = time.perf_counter() - t0
                ips = (i + 1) * o.batch_size / max(elapsed, 1e-9)
                rec = {
                    "kind": "step",
                    "epoch": epoch + 1,
                    "step": step,
                    "d_loss": d_loss.item(),
                    "g_loss": g_sum / max(g_steps, 1),
                    "images_per_second": round(ips, 1),
                }
                emit(rec)
                bar.set_postfix(
                    d=f"{rec['d_loss']:.3f}", g=f"{rec['g_loss']:.3f}", ips=f"{ips:.0f}"
                )
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        d_mean, g_mean = d_sum / n_batches, g_sum / max(g_steps, 1)
        if not (math.isfinite(d_mean) and math.isfinite(g_mean)):
            raise FloatingPointError(
                f"losses diverged at epoch {epoch + 1} (D {d_mean}, G {g_mean})"
            )
        rec = {
            "kind": "epoch",
            "epoch": epoch + 1,
            "step": step,
            "d_loss": d_mean,
            "g_loss": g_mean,
            "seconds": round(seconds, 2),
            "images_per_second": round(n_batches * o.batch_size / seconds, 1),
        }
        epoch_stats.append(rec)
        emit(rec)
        log(
            f"epoch {epoch + 1}/{o.epochs}: D {d_mean:.4f}  G {g_mean:.4f}  "
            f"{rec['images_per_second']:.0f} img/s  {seconds:.1f}s"
        )
        plot_losses(epoch_stats, run_dir / "losses.png", f"{o.arch} on {o.dataset} ({o.loss} loss)")

        last = epoch + 1 == o.epochs
        sample_net = ema.net if ema is not None else g
        if (epoch + 1) % o.sample_every == 0 or last:
            grid = sample_grid(
                sample_net,
                seed=o.sample_seed,
                num_classes=num_classes,
                conditional=spec.conditional,
                device=device,
            )
            (run_dir / f"samples-{epoch + 1:06d}.png").write_bytes(encode_png(grid))
        if (epoch + 1) % o.checkpoint_every == 0 or last:
            save_checkpoint(
                run_dir / f"checkpoint-{epoch + 1:06d}.pt",
                {
                    "arch": o.arch,
                    "g_kwargs": g_kwargs,
                    "d_kwargs": d_kwargs,
                    "spectral_norm": o.spectral_norm,
                    "G": g.state_dict(),
                    "D": d.state_dict(),
                    "G_ema": ema.net.state_dict() if ema is not None else None,
                    "opt_G": opt_g.state_dict(),
                    "opt_D": opt_d.state_dict(),
                    "epoch": epoch + 1,
                    "step": step,
                    "options": _jsonable(o),
                    "dataset": {k: v for k, v in data.describe().items() if k != "size"},
                    "loss": o.loss,
                    "rng": _rng_state(),
                    "epoch_stats": epoch_stats,
                    "stats": {
                        "command": command_line(options),
                        "images_per_second": rec["images_per_second"],
                        "train_seconds": round(train_seconds, 1),
                        "device": torch.cuda.get_device_name(device)
                        if device.type == "cuda"
                        else "cpu",
                    },
                },
            )
    stats_file.close()
    return run_dir
