"""Export: training checkpoints -> ONNX generators with model cards, checked for parity.

    export_checkpoint(checkpoint, name, out_dir) -> out_dir/<name>/{model.onnx, card.json}
    verify_card(out_dir/<name>) -> its ganserve.card.ModelCard, after checking model.onnx's sha256

The graph contract (``../shared/docs/architecture.md``, "The model contract"):
input ``z`` float32 [batch, latent_dim] (+ ``label`` int64 [batch] when
conditional), output ``image`` uint8 [batch, H, W, C]; batch is dynamic.
"""

from export.card import (
    CARD_FILE,
    CARD_FORMAT,
    ExportError,
    read_card,
    read_metadata,
    sha256_file,
    update_quality,
    verify_card,
    verify_model_dir,
)
from export.core import FORMATS, export_checkpoint
from export.specs import SPECS, ExportSpec, get_spec

__all__ = [
    "CARD_FILE",
    "CARD_FORMAT",
    "FORMATS",
    "SPECS",
    "ExportError",
    "ExportSpec",
    "export_checkpoint",
    "get_spec",
    "read_card",
    "read_metadata",
    "sha256_file",
    "update_quality",
    "verify_card",
    "verify_model_dir",
]
