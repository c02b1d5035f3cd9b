"""The options of a training run: one record, written to ``training_options.json``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from training.augment import parse_policy
from training.losses import get_loss
from training.networks import get_arch

LR_SCHEDULES = ("constant", "linear")
PRECISIONS = ("fp32", "bf16")


@dataclass
class TrainOptions:
    """Every option of a run; written to ``training_options.json``."""

    arch: str = "dcgan"
    dataset: str = "fashion-mnist"
    data_dir: str | None = None  # torchvision layout; None: $GANSERVE_DATA_DIR or ../shared/data
    download: bool = False  # let torchvision download the data set (needs a network)
    limit: int | None = None  # use only the first N training images
    data_mode: str = "auto"  # memory | stream (decode a folder batch by batch) | auto
    workers: int = 2  # DataLoader processes decoding a streamed folder
    epochs: int = 30
    batch_size: int = 64  # the global batch: split evenly over torchrun's processes
    loss: str | None = None  # bce | mse | hinge | wgan-gp; None: the architecture's default (bce)
    optimizer: str | None = None  # adam | rmsprop; None: the loss's default
    lr: float = 2e-4
    lr_g: float | None = None  # G's learning rate (two time-scale rule); None: lr
    lr_d: float | None = None  # D's learning rate; None: lr
    lr_schedule: str = "constant"  # constant | linear (to 0 at the last epoch)
    beta1: float | None = None  # None: 0.5 (the architecture may override)
    beta2: float | None = None  # None: 0.999
    n_critic: int | None = None  # D steps per G step; None: the loss's default
    gp_lambda: float = 10.0
    r1_gamma: float = 0.0  # R1 penalty gamma/2 * E|grad D(real)|^2 (0: off)
    ms_lambda: float = 0.0  # mode-seeking term of G's loss (Mao et al. 2019; 0: off)
    ac_lambda: float = 0.0  # auxiliary-classifier term (AC-GAN; conditional models; 0: off)
    info_lambda: float = 1.0  # InfoGAN's code term (infogan only; 0: off)
    augment: str = ""  # DiffAugment policy, e.g. "color,translation,cutout" ("": off)
    spectral_norm: bool = False  # spectral norm on every D layer
    ema: float = 0.0  # decay of an EMA copy of G's weights (0: off; e.g. 0.999)
    ema_warmup: bool = False  # decay min(ema, (1 + t) / (10 + t)) over G step t
    dcgan_init: bool = False  # N(0, 0.02) init (the WGAN-GP report's)
    g_kwargs: dict[str, Any] = field(default_factory=dict)
    d_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    sample_seed: int = 0  # the fixed latent batch of the sample grids
    device: str = "auto"  # under torchrun, auto is cuda:LOCAL_RANK on a GPU machine
    dist_backend: str = "auto"  # torchrun's process group: gloo | nccl | auto (nccl on CUDA)
    threads: int | None = None  # torch CPU threads; None: torch's default
    precision: str = "fp32"  # fp32 | bf16 (autocast of G's and D's forward passes)
    out: str = "runs"
    sample_every: int = 1  # epochs
    checkpoint_every: int = 10  # epochs (the last epoch always gets one)
    checkpoint_minutes: float = 15.0  # also checkpoint-latest.pt this often (0: off)
    max_minutes: float | None = None  # stop cleanly with a checkpoint after this long
    metrics: str = ""  # quality metric logged while training: cfd | fid ("": off)
    metrics_kimg: float = 60.0  # thousands of training images between metric points
    metrics_images: int = 5000  # generated images per metric point
    log_every: int = 100  # steps
    progress: bool = True
    resume: str | None = None  # checkpoint file, run directory or "latest"

    def resolved(self) -> TrainOptions:
        """Fill the ``None`` defaults from the architecture and the loss; check ranges."""
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
        o.lr_g = o.lr if o.lr_g is None else o.lr_g
        o.lr_d = o.lr if o.lr_d is None else o.lr_d
        for name in ("epochs", "batch_size", "n_critic", "sample_every", "checkpoint_every"):
            if getattr(o, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        for name in ("lr", "lr_g", "lr_d", "metrics_kimg"):
            if not getattr(o, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0")
        if o.max_minutes is not None and not o.max_minutes > 0:
            raise ValueError("--max-minutes must be > 0")
        if min(o.checkpoint_minutes, o.r1_gamma, o.ms_lambda, o.ac_lambda, o.info_lambda) < 0:
            raise ValueError(
                "--checkpoint-minutes, --r1-gamma, --ms-lambda, --ac-lambda and --info-lambda "
                "must be >= 0"
            )
        if o.ac_lambda > 0 and not spec.conditional:
            raise ValueError(f"--ac-lambda needs a conditional architecture; {o.arch} is not one")
        if o.threads is not None and o.threads < 1:
            raise ValueError("--threads must be >= 1")
        if o.metrics_images < 2:
            raise ValueError("--metrics-images must be >= 2")
        if o.precision not in PRECISIONS:
            choices = ", ".join(PRECISIONS)
            raise ValueError(f"--precision must be one of {choices}, not {o.precision!r}")
        if o.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}")
        if not 0 <= o.ema < 1:
            raise ValueError("--ema must be in [0, 1)")
        parse_policy(o.augment)
        if o.data_mode not in ("auto", "memory", "stream"):
            raise ValueError(f"--data-mode must be auto, memory or stream, not {o.data_mode!r}")
        if o.workers < 0:
            raise ValueError("--workers must be >= 0")
        if o.metrics and o.metrics not in ("cfd", "fid"):
            raise ValueError(f"--metrics must be cfd or fid, not {o.metrics!r}")
        return o


def options_dict(o: TrainOptions) -> dict[str, Any]:
    return dataclasses.asdict(o)


def from_dict(values: dict[str, Any]) -> TrainOptions:
    """Options saved by any version (unknown keys dropped, new ones at their defaults)."""
    return TrainOptions(
        **{k: v for k, v in values.items() if k in TrainOptions.__dataclass_fields__}
    )


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
