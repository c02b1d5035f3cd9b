"""Checkpoint -> checked ONNX generator + model card, written atomically."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

import ganserve
from export.card import ExportError, set_metadata, sha256_file
from export.graph import ImageGenerator, drop_float_output, export_parity_graph, to_float16
from export.parity import ParityReport, check_parity
from export.specs import PARITY_BATCHES, PARITY_SEED, ExportSpec, get_spec
from export.triton import triton_config
from ganserve.card import ModelCard, Quality, TrainingRun
from training.checkpoint import CheckpointError, load_checkpoint, load_generator

FORMATS = ("ganserve", "triton")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
REPO_ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str | None:
    """The commit of the source tree export runs from, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _created() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible builds
    when = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _inputs(spec: ExportSpec, latent_dim: int) -> list[dict[str, Any]]:
    inputs: list[dict[str, Any]] = [
        {"name": "z", "dtype": "float32", "shape": ["batch", latent_dim]}
    ]
    if spec.conditional:
        inputs.append({"name": "label", "dtype": "int64", "shape": ["batch"]})
    return inputs


def _training_stats(ckpt: dict[str, Any]) -> TrainingRun | None:
    stats = ckpt.get("stats")
    if not isinstance(stats, dict):
        return None
    run = TrainingRun(
        command=stats.get("command"),
        device=stats.get("device"),
        images_per_second=stats.get("images_per_second"),
        train_seconds=stats.get("train_seconds"),
    )
    if run.command is None and ckpt.get("options"):
        from training.options import TrainOptions, command_line  # checkpoints from before "command"

        known = {k: v for k, v in ckpt["options"].items() if k in TrainOptions.__dataclass_fields__}
        run.command = command_line(TrainOptions(**known))
    return run


def _json_safe(value: Any) -> Any:
    """Paths, tuples and the like as the JSON values they print as."""
    return json.loads(json.dumps(value, default=str))


def _check_graph(model: onnx.ModelProto, what: str) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx raises ValidationError and InferenceError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{what} graph fails onnx.checker: {first}") from None


def _build(
    ckpt: dict[str, Any], spec: ExportSpec, fp16: bool
) -> tuple[onnx.ModelProto, ParityReport, dict[str, Any]]:
    """Rebuild G, export it, check parity; returns (shipped graph, parity, model facts)."""
    try:
        g, _ = load_generator(ckpt)
    except CheckpointError as exc:
        raise ExportError(str(exc)) from None
    wrapper = ImageGenerator(g, spec.conditional).eval()
    latent_dim = int(g.latent_dim)
    num_classes = int(g.num_classes) if spec.conditional else None
    c, h, w = (int(v) for v in g.image_shape)
    graph = export_parity_graph(wrapper, spec, latent_dim, num_classes)
    if fp16:
        graph = to_float16(graph)
    shipped = drop_float_output(graph)
    _check_graph(shipped, "exported")
    report = check_parity(
        wrapper,
        graph,
        shipped,
        latent_dim=latent_dim,
        num_classes=num_classes,
        batches=PARITY_BATCHES,
        seed=PARITY_SEED,
        float_atol=spec.fp16_float_atol if fp16 else spec.float_atol,
        uint8_atol=spec.fp16_uint8_atol if fp16 else spec.uint8_atol,
        precision="float16" if fp16 else "float32",
    )
    if report.failures:
        raise ExportError(
            f"parity failed for {ckpt['arch']} ({report.precision}, seed {report.seed}): "
            f"{len(report.failures)} of {len(report.checks)} checks over tolerance\n"
            + report.table()
        )
    return shipped, report, {"latent_dim": latent_dim, "image_shape": [h, w, c]}


def build_card(
    name: str,
    ckpt: dict[str, Any],
    spec: ExportSpec,
    facts: dict[str, Any],
    report: ParityReport,
    *,
    fmt: str,
    quality: dict[str, Any] | None,
) -> ModelCard:
    """Every card field except ``sha256`` (see ganserve.card)."""
    dataset = ckpt.get("dataset") or {}
    class_names = dataset.get("class_names")
    num_classes = dataset.get("num_classes") or None
    g_classes = ckpt.get("g_kwargs", {}).get("num_classes")
    if spec.conditional and g_classes:
        num_classes = int(g_classes)
    h, w, c = facts["image_shape"]
    return ModelCard(
        name=name,
        architecture=ckpt["arch"],
        conditional=spec.conditional,
        loss=ckpt.get("loss"),
        dataset=dataset.get("name"),
        latent_dim=facts["latent_dim"],
        num_classes=num_classes,
        class_names=[str(n) for n in class_names] if class_names else None,
        image_shape=(h, w, c),
        precision=report.precision,
        epochs=ckpt.get("epoch"),
        step=ckpt.get("step"),
        options=_json_safe(ckpt.get("options") or {}),
        training=_training_stats(ckpt),
        parity=_json_safe(report.summary()),
        quality=None if quality is None else Quality.from_dict(quality),
        inputs=_inputs(spec, facts["latent_dim"]),
        outputs=[{"name": "image", "dtype": "uint8", "shape": ["batch", h, w, c]}],
        opset=spec.opset,
        model_file="1/model.onnx" if fmt == "triton" else "model.onnx",
        ganserve_version=ganserve.__version__,
        git_commit=git_commit(),
        created=_created(),
        exporter={
            "torch": torch.__version__.split("+")[0],
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "numpy": np.__version__,
        },
    )


def _prepare_target(name: str, out_dir: Path, force: bool) -> Path:
    if not NAME_RE.match(name):
        raise ExportError(
            f"invalid model name {name!r}: use lowercase letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit)"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"output {out_dir} exists and is not a directory")
    target = out_dir / name
    if (target.exists() or target.is_symlink()) and not force:
        raise ExportError(f"{target} already exists; pass --force to replace it")
    return target


def export_checkpoint(
    checkpoint: str | os.PathLike[str] | dict[str, Any],
    name: str,
    out_dir: str | os.PathLike[str],
    *,
    force: bool = False,
    fp16: bool = False,
    fmt: str = "ganserve",
    quality: dict[str, Any] | None = None,
) -> Path:
    """Export a checkpoint's generator to ``out_dir/<name>/`` (model.onnx + card.json).

    ``fmt="triton"`` writes a Triton model repository entry instead
    (``<name>/1/model.onnx``, ``<name>/config.pbtxt``, ``<name>/card.json``).
    Nothing is written unless parity holds; the directory appears whole or not at all.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    target = _prepare_target(name, out, force)
    try:
        ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise ExportError(str(exc)) from None
    try:
        spec = get_spec(ckpt["arch"])
    except KeyError as exc:
        raise ExportError(exc.args[0]) from None

    shipped, report, facts = _build(ckpt, spec, fp16)
    card = build_card(name, ckpt, spec, facts, report, fmt=fmt, quality=quality)
    set_metadata(shipped, card)
    shipped.producer_name = "ganserve"
    shipped.producer_version = ganserve.__version__
    data = shipped.SerializeToString()

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=out))
    try:
        model_file = card.model_path(tmp)
        model_file.parent.mkdir(parents=True, exist_ok=True)
        model_file.write_bytes(data)
        card.sha256 = sha256_file(model_file)
        if fmt == "triton":
            (tmp / "config.pbtxt").write_text(
                triton_config(name, spec, facts["latent_dim"], facts["image_shape"])
            )
        card.save(tmp)
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _replace_dir(src: Path, target: Path) -> None:
    """Move ``src`` to ``target``; an existing ``target`` is swapped out, then removed."""
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, old)
    try:
        os.replace(src, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
