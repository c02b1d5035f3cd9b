"""What the discrete codes of an ``infogan`` model draw, by the domain classifier's labels.

    python -m training.codes models/infogan-mnist [--num-gen 5000] [--seed 0]

An ``infogan`` G reads its code from its latent: the index of the largest of z's first
``codes`` values (10 unless its card's ``g_kwargs`` say otherwise). This draws latents as
the evaluation does (``make_latents``), groups them by code, labels the images with the
data set's domain classifier, and prints the code x class counts with each code's most
frequent class and its share. The codes are learned without labels, so a code that stands
for one class is found, not taught. In the service, setting one of those dimensions high
draws its code: ``/perturb?model=NAME&dims=0,1,2,3,4,5,6,7,8,9&values=4`` is a grid with
one code per row.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ganserve.latent import make_latents
from training.metrics import MetricError
from training.metrics.classifier import load_classifier
from training.metrics.sources import OnnxGenerator, generate, open_generator

DEFAULT_CODES = 10


def code_table(
    codes: np.ndarray, classes: np.ndarray, num_codes: int, num_classes: int
) -> dict[str, object]:
    """Counts [code, class], each code's top class and its share, and their mean (purity)."""
    counts = np.zeros((num_codes, num_classes), dtype=np.int64)
    np.add.at(counts, (codes, classes), 1)
    drawn = counts.sum(axis=1)
    top = counts.argmax(axis=1)
    share = np.divide(counts.max(axis=1), drawn, out=np.zeros(num_codes), where=drawn > 0)
    return {
        "counts": counts.tolist(),
        "top_class": top.tolist(),
        "top_share": share.tolist(),
        "purity": float(counts.max(axis=1).sum() / max(int(drawn.sum()), 1)),
        "images": len(codes),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.codes", description=__doc__.split("\n")[0])
    p.add_argument("model", help="an exported infogan model directory (model.onnx + card.json)")
    p.add_argument("--num-gen", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        if args.num_gen < 1:
            raise MetricError("--num-gen must be at least 1")
        gen = open_generator(args.model)
        if not isinstance(gen, OnnxGenerator) or gen.card.architecture != "infogan":
            raise MetricError(f"{args.model} is not an exported infogan model")
        num_codes = int((gen.card.options or {}).get("g_kwargs", {}).get("codes", DEFAULT_CODES))
        clf = load_classifier(gen.dataset or "")
        images = generate(gen, args.num_gen, args.seed).images  # latents make_latents(seed, n)
        z = make_latents(args.seed, args.num_gen, gen.latent_dim)
        codes = z[:, :num_codes].argmax(axis=1)
        table = code_table(codes, clf.predict(images), num_codes, 10)
    except MetricError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = list(range(10))  # the domain classifier's classes
    print(f"{args.model}: {args.num_gen} images, seed {args.seed}; rows: codes, columns: classes")
    print("| code | " + " | ".join(str(n) for n in names) + " | top class (share) |")
    print("|--:|" + "--:|" * len(names) + "---|")
    for code, row in enumerate(table["counts"]):  # type: ignore[arg-type]
        top, share = table["top_class"][code], table["top_share"][code]  # type: ignore[index]
        print(f"| {code} | " + " | ".join(map(str, row)) + f" | {top} ({share:.0%}) |")
    print(f"purity (images whose code's top class they show): {table['purity']:.1%}")
    print(json.dumps({"model": args.model, "seed": args.seed, **table}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
