"""The training loop: ``training_loop(options)`` knows nothing of the command line.

A run writes a numbered directory (``runs/00003-dcgan-fashion-mnist/``) holding
``training_options.json``, ``stats.jsonl`` (losses per logged step and per
epoch, images/s, quality metrics), ``losses.png`` (D and G per epoch, and the
quality metric beside them), ``samples-<epoch>.png`` grids from a fixed seed,
``metric-<name>.jsonl``, and checkpoints: ``checkpoint-<epoch>.pt`` every
``checkpoint_every`` epochs and ``checkpoint-latest.pt`` every
``checkpoint_minutes``, at a deadline (``max_minutes``) and on SIGTERM/SIGINT.
A checkpoint holds the weights, constructor arguments, optimizer states, RNG
states and the position in the epoch, so a run resumes exactly where its last
checkpoint was taken, and export rebuilds G from the file alone.

The parts: ``setup`` builds the data, networks and step object (and loads the
checkpoint once); ``AdversarialStep`` (training.steps) does one D and G update;
``Run`` holds the run directory and the end-of-epoch hooks.
"""

from __future__ import annotations

import json
import math
import re
import signal
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
from training.data import ImageData, load_dataset
from training.distributed import (
    World,
    broadcast_object,
    check_batch,
    pick_backend,
    world_from_env,
)
from training.distributed import finish as finish_distributed
from training.distributed import start as start_distributed
from training.distributed import stop as stop_distributed
from training.losses import get_loss
from training.networks import (
    apply_spectral_norm,
    build_discriminator,
    build_generator,
    get_arch,
    init_dcgan_weights,
)
from training.options import TrainOptions, command_line, options_dict
from training.steps import EMA, AdversarialStep, Batch

__all__ = ["EMA", "TrainOptions", "command_line", "resolve_resume", "training_loop"]

LATEST = "checkpoint-latest.pt"


def pick_device(name: str, world: World | None = None) -> torch.device:
    """``auto``: CUDA when present; under torchrun each rank takes ``cuda:LOCAL_RANK``."""
    world = world or World()
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    if name == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if name in ("auto", "cuda"):
        return torch.device("cuda", world.local_rank) if world.distributed else torch.device("cuda")
    return torch.device(name)


def next_run_dir(out: str | Path, arch: str, dataset: str) -> Path:
    """``out/NNNNN-arch-dataset``, numbered one above the highest run there."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in out.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    if dataset.startswith("folder:"):  # folder:../data/emoji64 -> emoji64
        dataset = Path(dataset[len("folder:") :]).resolve().name
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{arch}-{dataset}").strip("-")
    run = out / f"{max(ids, default=-1) + 1:05d}-{slug}"
    run.mkdir()
    return run


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint of ``run_dir`` that is furthest along (by optimizer step)."""
    epochs = sorted(run_dir.glob("checkpoint-[0-9]*.pt"))
    candidates = [p for p in (run_dir / LATEST, *epochs[-1:]) if p.is_file()]
    if not candidates:
        return None
    steps = {p: int(load_checkpoint(p).get("step", 0)) for p in candidates}
    return max(candidates, key=lambda p: (steps[p], p.name != LATEST))


def resolve_resume(resume: str, out: str | Path) -> tuple[Path, Path | None]:
    """``--resume`` -> (checkpoint, run directory to continue in, or None for a new one).

    A checkpoint file starts a new run directory from it; a run directory, or
    ``latest`` (the highest-numbered run under ``out`` that has a checkpoint),
    continues in that directory from its newest checkpoint.
    """
    path = Path(resume)
    if resume == "latest":
        runs = sorted((p for p in Path(out).glob("[0-9]" * 5 + "-*") if p.is_dir()), reverse=True)
        for run in runs:
            if (ckpt := newest_checkpoint(run)) is not None:
                return ckpt, run
        raise CheckpointError(f"no run directory with a checkpoint under {out}")
    if path.is_dir():
        ckpt = newest_checkpoint(path)
        if ckpt is None:
            raise CheckpointError(f"{path} holds no checkpoint to resume from")
        return ckpt, path
    return path, None


def to_uint8_nhwc(x: torch.Tensor) -> np.ndarray:
    """G output in [-1, 1] [B, C, H, W] -> uint8 [B, H, W, C], the export graph's mapping."""
    y = ((x.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).cpu().numpy()


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def plot_progress(
    epochs: list[dict[str, Any]], metrics: list[dict[str, Any]], path: Path, title: str
) -> None:
    """D and G loss per epoch, like the reports' figures; the quality metric beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if metrics else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 4), dpi=100, squeeze=False)
    ax = axes[0][0]
    xs = [e["epoch"] for e in epochs]
    ax.plot(xs, [e["d_loss"] for e in epochs], marker="o", label="D loss")
    ax.plot(xs, [e["g_loss"] for e in epochs], marker="o", label="G loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean over the epoch)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    if metrics:
        key = "fid" if "fid" in metrics[0] else "classifier_fd"
        ax = axes[0][1]
        ax.plot([m["cpu_minutes"] for m in metrics], [m[key] for m in metrics], marker="o")
        ax.set_xlabel("training CPU minutes")
        ax.set_ylabel(f"{key} ({metrics[0]['images']} images)")
        ax.set_yscale("log")
        ax.set_title("quality while training (lower is better)")
        ax.grid(alpha=0.3, which="both")
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


@dataclass
class Progress:
    """Where a run is: what a checkpoint records beside the weights."""

    epoch: int = 0  # completed epochs
    batch: int = 0  # completed batches of the current epoch
    step: int = 0  # optimizer steps of D
    train_seconds: float = 0.0  # wall time in training steps
    cpu_seconds: float = 0.0  # process CPU time in training steps (all threads)
    epoch_sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    epoch_stats: list[dict[str, Any]] = field(default_factory=list)
    metric_stats: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "epoch_sums": self.epoch_sums,
            "epoch_stats": self.epoch_stats,
            "metric_stats": self.metric_stats,
        }


@dataclass
class Setup:
    """Everything a run needs before its first step."""

    o: TrainOptions
    device: torch.device
    data: ImageData
    trainer: AdversarialStep
    g_kwargs: dict[str, Any]
    d_kwargs: dict[str, Any]
    progress: Progress
    resume_dir: Path | None
    world: World = field(default_factory=World)


def _build(o: TrainOptions, data: ImageData, device: torch.device, world: World) -> tuple[Any, ...]:
    spec = get_arch(o.arch)
    g_kwargs, d_kwargs = dict(o.g_kwargs), dict(o.d_kwargs)
    if spec.conditional:
        g_kwargs.setdefault("num_classes", data.num_classes)
        d_kwargs.setdefault("num_classes", data.num_classes)
    if o.ac_lambda > 0:
        d_kwargs.setdefault("aux_classifier", True)
    g = build_generator(o.arch, **g_kwargs).to(device)
    try:
        d = build_discriminator(o.arch, **d_kwargs)
    except TypeError as e:
        if "aux_classifier" not in str(e):
            raise
        raise ValueError(
            f"--ac-lambda: {o.arch}'s D has no auxiliary classifier (cdcgan's has)"
        ) from None
    if o.spectral_norm:
        apply_spectral_norm(d)
    d = d.to(device)
    if o.dcgan_init:
        init_dcgan_weights(g)
        init_dcgan_weights(d)
    assert o.loss is not None
    return AdversarialStep(g, d, get_loss(o.loss), o, world, device), g_kwargs, d_kwargs


def _check_resume(ckpt: dict[str, Any], o: TrainOptions, where: str) -> None:
    if ckpt["arch"] != o.arch:
        raise CheckpointError(f"{where} holds a {ckpt['arch']!r} model, not {o.arch!r}")
    saved = (ckpt.get("options") or {}).get("dataset")
    if saved is not None and saved != o.dataset:
        raise CheckpointError(f"{where} was trained on {saved!r}, not {o.dataset!r}")


def setup(options: TrainOptions) -> Setup:
    """Data, networks, optimizers and, on resume, their state (the checkpoint read once)."""
    ckpt: dict[str, Any] | None = None
    resume_dir: Path | None = None
    if options.resume:
        path, resume_dir = resolve_resume(options.resume, options.out)
        ckpt = load_checkpoint(path)
        _check_resume(ckpt, options, str(path))
    o = options.resolved()
    world = world_from_env()
    check_batch(world, o.batch_size)
    device = pick_device(o.device, world)
    backend = pick_backend(o.dist_backend, device)
    if o.threads is not None:
        torch.set_num_threads(o.threads)
    start_distributed(world, backend, device)
    torch.manual_seed(o.seed)  # the same on every rank: one init, one stream of latents
    spec = get_arch(o.arch)
    where = {"data_dir": o.data_dir, "download": o.download, "limit": o.limit, "seed": o.seed}
    how = {"device": device, "mode": o.data_mode, "workers": o.workers}
    data = load_dataset(o.dataset, image_shape=spec.image_shape, **where, **how)
    if spec.conditional and data.labels is None:
        raise ValueError(
            f"{o.arch} is conditional, but {o.dataset} has no labels "
            "(a labelled folder has one subfolder per class)"
        )
    if len(data) < o.batch_size:
        raise ValueError(
            f"{o.dataset} has {len(data)} images, fewer than --batch-size {o.batch_size}"
        )
    trainer, g_kwargs, d_kwargs = _build(o, data, device, world)
    progress = Progress()
    if ckpt is not None:
        progress = _restore(ckpt, trainer, o)
    return Setup(o, device, data, trainer, g_kwargs, d_kwargs, progress, resume_dir, world)


def _restore(ckpt: dict[str, Any], trainer: AdversarialStep, o: TrainOptions) -> Progress:
    try:
        trainer.load_state_dict(ckpt)
    except (RuntimeError, ValueError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{o.resume} does not fit these options: {msg}") from None
    stats = ckpt.get("stats", {})
    p = Progress(
        epoch=int(ckpt["epoch"]),
        batch=int(ckpt.get("batch", 0)),
        step=int(ckpt.get("step", 0)),
        train_seconds=float(stats.get("train_seconds", 0.0)),
        cpu_seconds=float(stats.get("cpu_seconds", stats.get("train_seconds", 0.0))),
        epoch_sums=list(ckpt.get("epoch_sums") or [0.0, 0.0, 0.0, 0.0]),
        epoch_stats=list(ckpt.get("epoch_stats", [])),
        metric_stats=list(ckpt.get("metric_stats", [])),
    )
    if "rng" in ckpt:
        _set_rng_state(ckpt["rng"])
    if p.epoch >= o.epochs:
        raise ValueError(f"{o.resume} already has {p.epoch} epochs; ask for --epochs > {p.epoch}")
    return p


class StopRequested:
    """SIGTERM / SIGINT ask the loop to checkpoint and stop after the current step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopRequested:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no handlers, no clean stop
                pass
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Run:
    """The run directory and what happens at the end of an epoch or a stop."""

    def __init__(self, s: Setup, options: TrainOptions, log: Any) -> None:
        self.s, self.o = s, s.o
        self.main = s.world.main  # under torchrun, rank 0 alone writes and logs
        self.log = log if self.main else (lambda *_: None)
        self.command = command_line(options)
        self.monitor: Any = None
        self.stats_file: Any = None
        if not self.main:
            self.dir = Path(str(broadcast_object(None, s.world)))
            return
        if s.resume_dir is not None:
            self.dir = s.resume_dir
        else:
            self.dir = next_run_dir(self.o.out, self.o.arch, self.o.dataset)
            (self.dir / "training_options.json").write_text(
                json.dumps(
                    {
                        **options_dict(self.o),
                        "resolved_device": str(s.device),
                        "world_size": s.world.size,
                        "dataset_info": {**s.data.describe(), "mode": s.data.mode},
                    },
                    indent=2,
                )
            )
        broadcast_object(str(self.dir), s.world)
        self.stats_file = (self.dir / "stats.jsonl").open("a")
        if self.o.metrics:
            from training.monitor import QualityMonitor

            self.monitor = QualityMonitor(
                self.o.metrics,
                dataset=self.o.dataset,
                data_dir=self.o.data_dir,
                num_images=self.o.metrics_images,
                seed=self.o.sample_seed + 1,
                num_classes=s.data.num_classes,
                conditional=get_arch(self.o.arch).conditional,
                device=s.device,
            )

    def emit(self, record: dict[str, Any]) -> None:
        if self.stats_file is not None:
            self.stats_file.write(json.dumps(record) + "\n")
            self.stats_file.flush()

    def close(self) -> None:
        if self.stats_file is not None:
            self.stats_file.close()

    def checkpoint(self, name: str) -> Path:
        s, p, o = self.s, self.s.progress, self.o
        if not self.main:
            return self.dir / name
        last = p.epoch_stats[-1] if p.epoch_stats else {}
        return save_checkpoint(
            self.dir / name,
            {
                "arch": o.arch,
                "g_kwargs": s.g_kwargs,
                "d_kwargs": s.d_kwargs,
                "spectral_norm": o.spectral_norm,
                **s.trainer.state_dict(),
                **p.to_dict(),
                "options": options_dict(o),
                "dataset": {k: v for k, v in s.data.describe().items() if k != "size"},
                "loss": o.loss,
                "rng": _rng_state(),
                "stats": {  # ms precision: a resume adds to these, and short runs stay > 0
                    "command": self.command,
                    "images_per_second": last.get("images_per_second"),
                    "train_seconds": round(p.train_seconds, 3),
                    "cpu_seconds": round(p.cpu_seconds, 3),
                    "world_size": s.world.size,
                    "device": torch.cuda.get_device_name(s.device)
                    if s.device.type == "cuda"
                    else "cpu",
                },
            },
        )

    def measure(self) -> None:
        """One point of the quality curve (its time is not training time)."""
        p = self.s.progress
        figures = self.monitor.measure(self.s.trainer.sampling_net())
        rec = {
            "kind": "metric",
            "metric": self.o.metrics,
            "epoch": p.epoch,
            "step": p.step,
            "kimg": round(p.step * self.o.batch_size / 1000, 1),
            "images": self.o.metrics_images,
            "cpu_minutes": round(p.cpu_seconds / 60, 2),
            "train_minutes": round(p.train_seconds / 60, 2),
            **figures,
        }
        p.metric_stats.append(rec)
        self.emit(rec)
        with (self.dir / f"metric-{self.o.metrics}.jsonl").open("a") as f:
            f.write(json.dumps(rec) + "\n")
        shown = {k: round(v, 3) for k, v in figures.items() if k != "seconds"}
        self.log(f"metric at {rec['kimg']} kimg, {rec['cpu_minutes']} CPU min: {shown}")

    def end_epoch(self, seconds: float) -> None:
        s, p, o = self.s, self.s.progress, self.o
        n_batches = len(s.data) // o.batch_size
        d_sum, g_sum, g_steps, _ = p.epoch_sums
        d_mean, g_mean = d_sum / n_batches, g_sum / max(g_steps, 1)
        if not (math.isfinite(d_mean) and math.isfinite(g_mean)):
            raise FloatingPointError(f"losses diverged at epoch {p.epoch} (D {d_mean}, G {g_mean})")
        rec = {
            "kind": "epoch",
            "epoch": p.epoch,
            "step": p.step,
            "d_loss": d_mean,
            "g_loss": g_mean,
            "seconds": round(seconds, 2),
            "images_per_second": round(n_batches * o.batch_size / max(seconds, 1e-9), 1),
        }
        p.epoch_stats.append(rec)
        p.epoch_sums = [0.0, 0.0, 0.0, 0.0]
        if not self.main:
            return
        self.emit(rec)
        self.log(
            f"epoch {p.epoch}/{o.epochs}: D {d_mean:.4f}  G {g_mean:.4f}  "
            f"{rec['images_per_second']:.0f} img/s  {seconds:.1f}s"
        )
        self.plot()
        last = p.epoch == o.epochs
        if p.epoch % o.sample_every == 0 or last:
            grid = sample_grid(
                s.trainer.sampling_net(),
                seed=o.sample_seed,
                num_classes=s.data.num_classes,
                conditional=get_arch(o.arch).conditional,
                device=s.device,
            )
            (self.dir / f"samples-{p.epoch:06d}.png").write_bytes(encode_png(grid))
        if p.epoch % o.checkpoint_every == 0 or last:
            self.checkpoint(f"checkpoint-{p.epoch:06d}.pt")

    def plot(self) -> None:
        p = self.s.progress
        if p.epoch_stats and self.main:
            title = f"{self.o.arch} on {self.o.dataset} ({self.o.loss} loss)"
            plot_progress(p.epoch_stats, p.metric_stats, self.dir / "losses.png", title)


def _lr_factor(o: TrainOptions, step: int, total_steps: int) -> float:
    if o.lr_schedule == "linear":
        return max(0.0, 1 - step / max(total_steps, 1))
    return 1.0


def _batch(s: Setup, idx: torch.Tensor, real: torch.Tensor) -> Batch:
    if s.data.labels is None or not get_arch(s.o.arch).conditional:
        return Batch(real, None, None)
    # drawn for the global batch and sliced, like the latents: N ranks ask for what one would
    n = len(idx) * s.world.size
    fake_labels = s.world.shard(torch.randint(0, s.data.num_classes, (n,), device=s.device))
    return Batch(real, s.data.labels[idx.to(s.data.labels.device)], fake_labels)


def _epoch_indices(s: Setup, epoch: int, start: int) -> list[torch.Tensor]:
    """This rank's share of each global batch of ``epoch`` from batch ``start`` on.

    The order depends on (seed, epoch) alone, so every rank, any number of
    ranks, and a resumed run see the same global batches.
    """
    o = s.o
    gen = torch.Generator(device="cpu").manual_seed(o.seed * 1_000_003 + epoch)
    perm = torch.randperm(len(s.data), generator=gen)
    n_batches = len(s.data) // o.batch_size
    return [
        s.world.shard(perm[i * o.batch_size : (i + 1) * o.batch_size])
        for i in range(start, n_batches)
    ]


def train_epochs(s: Setup, run: Run, stop: StopRequested) -> str:
    """Steps until the last epoch, a deadline or a signal; returns why it stopped."""
    from tqdm import tqdm

    o, p, trainer, world = s.o, s.progress, s.trainer, s.world
    n_batches = len(s.data) // o.batch_size
    total_steps = n_batches * o.epochs
    deadline = time.monotonic() + o.max_minutes * 60 if o.max_minutes else math.inf
    checkpoint_every_s = o.checkpoint_minutes * 60 if o.checkpoint_minutes else math.inf
    last_checkpoint = time.monotonic()
    metric_every = max(1, round(o.metrics_kimg * 1000 / o.batch_size))
    trainer.g.train()
    trainer.d.train()
    while p.epoch < o.epochs:
        t_epoch = time.perf_counter()
        batches = s.data.batches(_epoch_indices(s, p.epoch, p.batch), s.device)
        bar = tqdm(
            batches,
            total=n_batches - p.batch,
            desc=f"epoch {p.epoch + 1}/{o.epochs}",
            disable=not (o.progress and run.main),
            file=sys.stderr,
            leave=False,
        )
        for idx, real in bar:
            t0, c0 = time.perf_counter(), time.process_time()
            if o.lr_schedule != "constant":
                trainer.set_lr_factor(_lr_factor(o, p.step, total_steps))
            d_loss, g_loss = trainer.step(_batch(s, idx, real), p.step)
            p.epoch_sums[0] += d_loss
            if g_loss is not None:
                p.epoch_sums[1] += g_loss
                p.epoch_sums[2] += 1
            p.step += 1
            p.batch += 1
            p.train_seconds += time.perf_counter() - t0
            now = time.monotonic()
            # one small all-reduce: CPU time of all ranks, and a stop any rank asks for
            cpu, signalled, late = world.agree(
                time.process_time() - c0, stop.signal is not None, now >= deadline
            )
            p.cpu_seconds += cpu
            if p.step % o.log_every == 0:
                g_mean = p.epoch_sums[1] / max(p.epoch_sums[2], 1)
                ips = p.batch * o.batch_size / max(time.perf_counter() - t_epoch, 1e-9)
                run.emit(
                    {
                        "kind": "step",
                        "epoch": p.epoch + 1,
                        "step": p.step,
                        "d_loss": d_loss,
                        "g_loss": g_mean,
                        "images_per_second": round(ips, 1),
                    }
                )
                bar.set_postfix(d=f"{d_loss:.3f}", g=f"{g_mean:.3f}")
            if run.monitor is not None and p.step % metric_every == 0:
                run.measure()
            if signalled or late:
                p.epoch_sums[3] += time.perf_counter() - t_epoch
                run.checkpoint(LATEST)
                run.plot()
                return "signal" if signalled else "deadline"
            if now - last_checkpoint >= checkpoint_every_s and p.batch < n_batches:
                p.epoch_sums[3] += time.perf_counter() - t_epoch
                t_epoch = time.perf_counter()
                run.checkpoint(LATEST)
                last_checkpoint = now
        seconds = p.epoch_sums[3] + time.perf_counter() - t_epoch
        p.epoch += 1
        p.batch = 0
        run.end_epoch(seconds)
        if p.epoch % o.checkpoint_every == 0 or p.epoch == o.epochs:
            last_checkpoint = time.monotonic()
    return "done"


def cpu_bf16_native() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX, as oneDNN sees it);
    without it, bf16 autocast on the CPU is emulated and runs many times slower than fp32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def precision_warning(precision: str, device: torch.device) -> str | None:
    """A warning for ``--precision bf16`` on a CPU that would emulate bfloat16."""
    if precision != "bf16" or device.type != "cpu" or cpu_bf16_native():
        return None
    return (
        "warning: this CPU has no native bfloat16 (AVX512-BF16 or AMX), so --precision bf16 "
        "is emulated and runs many times slower than fp32 here; use --precision fp32"
    )


def training_loop(options: TrainOptions, *, log: Any = print) -> Path:
    """Train one GAN as ``options`` say; returns the run directory.

    Stops early, with ``checkpoint-latest.pt`` written, at ``max_minutes`` or on
    SIGTERM/SIGINT; ``--resume RUN_DIR`` then continues where it stopped.
    """
    s = setup(options)
    try:
        run = Run(s, options, log)
        o = s.o
        p = s.progress  # completed epochs: the run goes on in epoch p.epoch + 1
        where = f"from epoch {p.epoch + 1}, batch {p.batch}" if options.resume else ""
        workers = f", {s.world.size} processes" if s.world.distributed else ""
        run.log(
            f"run {run.dir}: {o.arch} on {o.dataset} ({len(s.data)} images, {s.data.mode}), "
            f"{o.loss} loss, device {s.device}{workers} {where}".rstrip()
        )
        warning = precision_warning(o.precision, s.device)
        if warning:
            run.log(warning)
        try:
            with StopRequested() as stop:
                why = train_epochs(s, run, stop)
        finally:
            run.close()
        finish_distributed()
    finally:
        stop_distributed()
    if why != "done":
        p = s.progress
        run.log(
            f"stopped ({'signal' if why == 'signal' else '--max-minutes'}) at epoch "
            f"{p.epoch + 1}, batch {p.batch}: {run.dir / LATEST}; continue with "
            f"--resume {run.dir}"
        )
    return run.dir
