"""Model cards: ``card.json`` beside ``model.onnx``, the same facts in the ONNX metadata_props.

A card is one JSON object (``CARD_FORMAT``)::

    format            "ganserve-card/1"
    name              the model's name (its directory)
    architecture      registered architecture (training.networks)
    conditional       true when the graph takes a ``label`` input
    loss, dataset     training loss name; data set name
    latent_dim        size of ``z``
    num_classes       classes of the data set (the label range for conditional models), or null
    class_names       list of names, or null
    image_shape       [H, W, C] of the ``image`` output
    precision         "float32" or "float16" (arithmetic inside the graph; I/O types never change)
    epochs, step      training progress of the checkpoint (step may be null)
    options           the training options
    training          {"command", "device", "images_per_second", "train_seconds"} or null
    parity            export parity figures (see export.parity.ParityReport.summary)
    quality           FID and how it was measured, or null until the evaluation fills it
                      (``training.evaluate --write-card`` fills card.json only, so model.onnx
                      and its sha256 never change after export; ``update_quality`` also
                      rewrites the metadata_props)
    inputs, outputs   [{"name", "dtype", "shape"}] of the graph ("batch" is the dynamic axis)
    opset             ONNX opset of the graph
    model_file        path of the graph relative to the card ("model.onnx", "1/model.onnx")
    sha256            hex sha256 of the graph file's bytes (card only)
    ganserve_version, git_commit, created, exporter

In ``model.onnx`` every card field but ``sha256`` is a metadata_props entry
whose value is the field's JSON encoding, as the card was at export (or at the
last ``update_quality``); card.json is the one the service and the tools read.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import onnx

CARD_FORMAT = "ganserve-card/1"
CARD_FILE = "card.json"


class ExportError(RuntimeError):
    """An export or check that cannot go on; one-line message (parity adds a table)."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def set_metadata(model: onnx.ModelProto, card: dict[str, Any]) -> None:
    """Write every card field except ``sha256`` into ``model.metadata_props`` (JSON values)."""
    del model.metadata_props[:]
    for key, value in card.items():
        if key == "sha256":
            continue
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = json.dumps(value, sort_keys=True)
    model.doc_string = f"ganserve generator {card.get('name')} ({card.get('architecture')})"


def read_metadata(model_or_path: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, Any]:
    """Decode the card fields stored in an ONNX file's metadata_props."""
    if isinstance(model_or_path, onnx.ModelProto):
        model = model_or_path
    else:
        model = onnx.load(os.fspath(model_or_path), load_external_data=False)
    return {p.key: json.loads(p.value) for p in model.metadata_props}


def read_card(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        raise ExportError(f"{model_dir} has no {CARD_FILE}")
    try:
        card = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ExportError(f"{path} is not a ganserve model card (expected format {CARD_FORMAT})")
    return card


def verify_model_dir(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``card.json`` and check the sha256 of its graph file; return the card."""
    model_dir = Path(path)
    card = read_card(model_dir)
    model_file = model_dir / str(card.get("model_file", "model.onnx"))
    if not model_file.is_file():
        raise ExportError(f"{model_file} is missing")
    expected = card.get("sha256")
    actual = sha256_file(model_file)
    if actual != expected:
        raise ExportError(
            f"{model_file} does not match its card: sha256 {actual[:12]}..., "
            f"card says {str(expected)[:12]}..."
        )
    return card


def write_card(model_dir: Path, card: dict[str, Any]) -> Path:
    path = model_dir / CARD_FILE
    path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    return path


def update_quality(path: str | os.PathLike[str], quality: dict[str, Any] | None) -> dict[str, Any]:
    """Set the card's ``quality`` (card.json and metadata_props), re-hash, replace atomically."""
    model_dir = Path(path)
    card = verify_model_dir(model_dir)
    model_file = model_dir / card.get("model_file", "model.onnx")
    model = onnx.load(os.fspath(model_file))
    card["quality"] = quality
    set_metadata(model, card)
    tmp_model = model_file.with_name(model_file.name + ".tmp")
    tmp_model.write_bytes(model.SerializeToString())
    card["sha256"] = sha256_file(tmp_model)
    tmp_card = model_dir / (CARD_FILE + ".tmp")
    tmp_card.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp_model, model_file)
    os.replace(tmp_card, model_dir / CARD_FILE)
    return card
