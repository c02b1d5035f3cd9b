"""Model cards on the export side: ``card.json`` beside the graph, the same facts in its metadata.

The card's fields and format are ``ganserve.card.ModelCard`` (every stage reads
it there). In ``model.onnx`` every card field but ``sha256`` is a metadata_props
entry whose value is the field's JSON encoding, as the card was at export (or
at the last ``update_quality``); card.json is the one the service and the tools
read. ``training.evaluate --write-card`` fills card.json only, so model.onnx and
its sha256 never change after export; ``update_quality`` also rewrites the
metadata_props.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import onnx

from ganserve.card import CARD_FILE, CARD_FORMAT, CardError, CardMissing, ModelCard, Quality

__all__ = [
    "CARD_FILE",
    "CARD_FORMAT",
    "ExportError",
    "read_card",
    "read_metadata",
    "set_metadata",
    "sha256_file",
    "update_quality",
    "verify_card",
    "verify_model_dir",
]


class ExportError(RuntimeError):
    """An export or check that cannot go on; one-line message (parity adds a table)."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def set_metadata(model: onnx.ModelProto, card: ModelCard) -> None:
    """Write every card field except ``sha256`` into ``model.metadata_props`` (JSON values)."""
    del model.metadata_props[:]
    for key, value in card.to_dict().items():
        if key == "sha256":
            continue
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = json.dumps(value, sort_keys=True)
    model.doc_string = f"ganserve generator {card.name} ({card.architecture})"


def read_metadata(model_or_path: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, Any]:
    """Decode the card fields stored in an ONNX file's metadata_props."""
    if isinstance(model_or_path, onnx.ModelProto):
        model = model_or_path
    else:
        model = onnx.load(os.fspath(model_or_path), load_external_data=False)
    return {p.key: json.loads(p.value) for p in model.metadata_props}


def read_card(model_dir: str | os.PathLike[str]) -> ModelCard:
    """The card of a directory export wrote; ``ExportError`` when it is missing or not one."""
    try:
        card = ModelCard.load(model_dir)
    except CardMissing:
        raise ExportError(f"{model_dir} has no {CARD_FILE}") from None
    except CardError as exc:
        raise ExportError(str(exc)) from None
    if card.format != CARD_FORMAT:
        expected = f"expected format {CARD_FORMAT}"
        raise ExportError(f"{card.path} is not a ganserve model card ({expected})")
    return card


def verify_card(path: str | os.PathLike[str]) -> ModelCard:
    """Read ``card.json`` and check the sha256 of its graph file; return the card."""
    card = read_card(path)
    model_file = card.model_path()
    if not model_file.is_file():
        raise ExportError(f"{model_file} is missing")
    actual = sha256_file(model_file)
    if actual != card.sha256:
        raise ExportError(
            f"{model_file} does not match its card: sha256 {actual[:12]}..., "
            f"card says {str(card.sha256)[:12]}..."
        )
    return card


def verify_model_dir(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``verify_card``, as the card's JSON object."""
    return verify_card(path).to_dict()


def update_quality(path: str | os.PathLike[str], quality: dict[str, Any] | None) -> dict[str, Any]:
    """Set the card's ``quality`` (card.json and metadata_props), re-hash, replace atomically."""
    card = verify_card(Path(path))
    model_file = card.model_path()
    model = onnx.load(os.fspath(model_file))
    card.quality = None if quality is None else Quality.from_dict(quality)
    set_metadata(model, card)
    tmp_model = model_file.with_name(model_file.name + ".tmp")
    tmp_model.write_bytes(model.SerializeToString())
    card.sha256 = sha256_file(tmp_model)
    os.replace(tmp_model, model_file)
    card.save()
    return card.to_dict()
