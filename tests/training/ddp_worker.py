"""Run a few training steps under torchrun (or alone) and report what each rank saw.

Used by test_distributed.py: ``torchrun --nproc_per_node 2 ddp_worker.py OUT.json``.
After every step each rank all-gathers a fingerprint of G's and D's weights;
rank 0 writes, per configuration, the losses of each step and whether the
weights were bit-identical on every rank after every step.
"""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist

from training.distributed import stop
from training.loop import _batch, _epoch_indices, setup
from training.options import TrainOptions

CONFIGS = {
    "dcgan-bce": {"arch": "dcgan", "loss": "bce"},
    "dcgan-wgan-gp": {"arch": "dcgan", "loss": "wgan-gp", "n_critic": 2},
    "dcgan-cond-hinge-r1": {"arch": "dcgan-cond", "loss": "hinge", "r1_gamma": 1.0, "ema": 0.9},
}
STEPS = 4


def weights(trainer) -> torch.Tensor:
    nets = [trainer.g, trainer.d] + ([trainer.ema.net] if trainer.ema else [])
    return torch.cat([p.detach().flatten().double() for n in nets for p in n.parameters()])


def main(out: str, tmp: str) -> None:
    report = {}
    for name, kwargs in CONFIGS.items():
        o = TrainOptions(
            dataset="fake",
            limit=256,
            batch_size=32,
            epochs=1,
            out=tmp,
            progress=False,
            threads=1,
            seed=3,
            **kwargs,
        )
        s = setup(o)
        lists = _epoch_indices(s, 0, 0)
        losses, identical = [], []
        for step, (idx, real) in zip(range(STEPS), s.data.batches(lists, s.device), strict=False):
            d_loss, g_loss = s.trainer.step(_batch(s, idx, real), step)
            losses.append([d_loss, g_loss])
            w = weights(s.trainer)
            if s.world.distributed:
                gathered = [torch.empty_like(w) for _ in range(s.world.size)]
                dist.all_gather(gathered, w)
                identical.append(all(torch.equal(gathered[0], g) for g in gathered))
            else:
                identical.append(True)
        report[name] = {"losses": losses, "identical": identical, "world": s.world.size}
    if s.world.main:
        with open(out, "w") as f:
            json.dump(report, f)
    stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
