"""Training speed: ganserve's loop against a loop written the way the reports write it.

The reports' loop: a torchvision ``DataLoader`` over the data set with
``ToTensor`` + ``Normalize`` per image, ``shuffle=True``, and ``.to(device)``
per batch. Ours: the whole data set as one tensor on the device, a random
permutation per epoch, batches by indexing (``training.data`` / ``training.loop``).
Both run the same networks, losses and optimizer steps (D then G, BCE), so the
difference is the input pipeline. Measured in interleaved rounds in one process,
images/s = real images consumed per second over a fixed number of steps.

The same rounds time the training code's own step (``training.steps.AdversarialStep``,
BCE, no EMA) on our loop's batches in float32 and with ``--precision bf16``
(bfloat16 autocast of the forward passes): what the precision option buys.

    python -m bench.train_bench [--steps 30] [--rounds 3] [--device auto]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from unittest import mock

import torch
import torch.nn.functional as F

from bench.report import write_section
from training.data import default_data_dir, load_dataset, to_float
from training.loop import pick_device
from training.networks import build_discriminator, build_generator


def _step_fn(device: torch.device) -> Callable[[torch.Tensor], None]:
    torch.manual_seed(0)
    g, d = build_generator("dcgan").to(device), build_discriminator("dcgan").to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(real: torch.Tensor) -> None:
        z = torch.randn(real.shape[0], 100, device=device)
        fake = g(z)
        d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = F.softplus(-d(fake)).mean()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()

    return step


@contextlib.contextmanager
def _d_not_frozen(net: torch.nn.Module) -> Iterator[None]:
    """Stands in for ``training.steps.frozen``: D's weights keep requires_grad in G's step."""
    yield


def _adversarial_step_fn(
    device: torch.device, precision: str, freeze_d: bool = True
) -> Callable[[torch.Tensor], None]:
    """The training code's step (``AdversarialStep``) at ``precision``, on dcgan with BCE.

    ``freeze_d=False`` runs it with ``training.steps.frozen`` replaced by a no-op, so G's
    backward also computes D's weight gradients (which the next D step discards): what
    freezing D in G's step saves."""
    from training import steps
    from training.losses import get_loss
    from training.options import TrainOptions
    from training.steps import AdversarialStep, Batch

    torch.manual_seed(0)
    g, d = build_generator("dcgan").to(device), build_discriminator("dcgan").to(device)
    options = TrainOptions(precision=precision).resolved()
    trainer = AdversarialStep(g, d, get_loss("bce"), options, device=device)
    count = itertools.count()

    def step(real: torch.Tensor) -> None:
        if freeze_d:
            trainer.step(Batch(real, None, None), next(count))
        else:
            with mock.patch.object(steps, "frozen", _d_not_frozen):
                trainer.step(Batch(real, None, None), next(count))

    return step


def reports_batches(batch: int, device: torch.device) -> Iterator[torch.Tensor]:
    import torchvision
    from torchvision import transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    ds = torchvision.datasets.FashionMNIST(str(default_data_dir()), train=True, transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True)
    while True:
        for x, _ in loader:
            yield x.to(device)


def ours_batches(batch: int, device: torch.device) -> Iterator[torch.Tensor]:
    data = load_dataset("fashion-mnist", image_shape=(1, 28, 28), device=device)
    gen = torch.Generator().manual_seed(0)
    while True:
        perm = torch.randperm(len(data), generator=gen).to(device)
        for i in range(len(data) // batch):
            yield to_float(data.images[perm[i * batch : (i + 1) * batch]])


def time_loop(
    batches: Iterator[torch.Tensor],
    step: Callable[[torch.Tensor], None],
    steps: int,
    batch: int,
    device: torch.device,
) -> float:
    for _ in range(2):  # warm-up
        step(next(batches))
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(next(batches))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def time_input(batches: Iterator[torch.Tensor], steps: int, batch: int) -> float:
    """Images/s of the input pipeline alone: batches drawn, no training step."""
    next(batches)
    t0 = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return steps * batch / (time.perf_counter() - t0)


def run(
    steps: int = 30,
    rounds: int = 3,
    device_name: str = "auto",
    batches: tuple[int, ...] = (64, 256),
) -> str:
    device = pick_device(device_name)
    rows = []
    for batch in batches:
        results: dict[str, list[float]] = {
            "reports": [],
            "ours": [],
            "fp32": [],
            "bf16": [],
            "unfrozen": [],
        }
        sources = {"reports": reports_batches(batch, device), "ours": ours_batches(batch, device)}
        for _ in range(rounds):  # interleaved, so load on the machine hits all alike
            for name, src in sources.items():
                results[name].append(time_loop(src, _step_fn(device), steps, batch, device))
            for precision in ("fp32", "bf16"):
                step = _adversarial_step_fn(device, precision)
                results[precision].append(time_loop(sources["ours"], step, steps, batch, device))
            step = _adversarial_step_fn(device, "fp32", freeze_d=False)
            results["unfrozen"].append(time_loop(sources["ours"], step, steps, batch, device))
        rep, ours = statistics.median(results["reports"]), statistics.median(results["ours"])
        fp32, bf16 = statistics.median(results["fp32"]), statistics.median(results["bf16"])
        unfrozen = statistics.median(results["unfrozen"])
        # The input pipeline alone bounds what any loop change can win: a step costs
        # compute + input, and only the input part differs between the two loops.
        inputs = {name: time_input(src, 4 * steps, batch) for name, src in sources.items()}
        share = (1 / inputs["reports"]) / (1 / rep)  # input seconds / step seconds, reports' loop
        bound = 1 / max(1 - share, 1e-9)
        rows.append(
            f"| {batch} | {rep:,.0f} | {ours:,.0f} | {ours / rep:.2f}x "
            f"| {inputs['reports']:,.0f} | {inputs['ours']:,.0f} | {share:.0%} | {bound:.2f}x "
            f"| {fp32:,.0f} | {bf16:,.0f} | {bf16 / fp32:.2f}x "
            f"| {unfrozen:,.0f} | {fp32 / unfrozen:.2f}x |"
        )
        print(rows[-1], flush=True)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (
            f"CPU ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
        )
    )
    return "\n".join(
        [
            f"## Training loop: images/s, dcgan on Fashion-MNIST ({where})",
            "",
            f"`python -m bench.train_bench --steps {steps} --rounds {rounds} "
            f"--device {device_name}`: median of {rounds} interleaved rounds of {steps} steps"
            " (D + G) each.",
            "",
            "| batch | reports' loop (DataLoader, per-batch .to) "
            "| ganserve loop (data on device) | ratio "
            "| reports' input alone | ours input alone | input share of a reports' step "
            "| ratio bound (input cost -> 0) "
            "| training step, fp32 | training step, `--precision bf16` | bf16 / fp32 "
            "| fp32, D not frozen in G's step | frozen / not |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "Images/s throughout. *Input alone*: batches drawn with no training step. Both "
            "loops run the same networks, losses and optimizer steps, so the input pipeline is "
            "all they can differ in: with the reports' input share s of a step, no input "
            "pipeline can make the loop faster than 1 / (1 - s) (the bound column). *Training "
            "step*: the training code's own D + G step (`AdversarialStep`, BCE) on our loop's "
            "batches, in float32 and with `--precision bf16` (bfloat16 autocast of the forward "
            "passes; weights, optimizer state and losses in float32). *D not frozen*: the same "
            "fp32 step with D's weights left trainable during G's step (as the reports' loop "
            "runs it), so G's backward also computes D's weight gradients, which the next D "
            "step discards; the training code freezes D there (`training.steps.frozen`).",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.train_bench", description=__doc__.split("\n")[0]
    )
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--section", default=None, help="docs/benchmarks.md section (default by device)")
    args = p.parse_args(argv)
    md = run(args.steps, args.rounds, args.device)
    name = args.section or f"training-{pick_device(args.device).type}"
    print(md)
    write_section(name, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
