"""The model card: ``card.json`` beside ``model.onnx``, one typed object for every stage.

Export writes it, the service serves from it, the evaluation records its
quality figures in it, and the tables and benchmarks read it, all through
``ModelCard``::

    card = ModelCard.load("models/dcgan-fashion")   # the directory or its card.json
    card.latent_dim, card.image_shape, card.fid
    card.quality = Quality({"fid": 22.5})
    card.save()                                     # atomically, where it was loaded from

The JSON object (``CARD_FORMAT``), field by field::

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
    quality           the figures (fid, kid, kid_std, precision, recall, classifier_fd,
                      conditional_accuracy), how each was measured (``measured``: per
                      metric its command, data and time) and the protocol; null until
                      ``training.evaluate --write-card`` fills it
    inputs, outputs   [{"name", "dtype", "shape"}] of the graph ("batch" is the dynamic axis)
    opset             ONNX opset of the graph
    model_file        path of the graph relative to the card ("model.onnx", "1/model.onnx")
    ganserve_version, git_commit, created, exporter
    sha256            hex sha256 of the graph file's bytes

Cards from older exports load: a field they lack reads as None (``training``
without its ``command``, ``quality`` null). Fields this version does not know
are kept and written back. Saving writes every known field, so an older card
comes back in the current layout. A card that cannot be read raises
``CardError``, whose message names the file.

This module is the one rule for "the best model" too (``ranking_key``): the
service's defaults, the quality tables and the benchmarks all rank with it.
It needs the standard library only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, cast

CARD_FORMAT = "ganserve-card/1"
CARD_FILE = "card.json"
MODEL_FILE = "model.onnx"
#: The data set whose models the service's defaults come from (FIDs only compare within one).
DEFAULT_DATASET = "fashion-mnist"

T = TypeVar("T")


class CardError(ValueError):
    """A card that cannot be read; ``str()`` names the file, ``detail`` says what is wrong."""

    def __init__(self, path: Path | str | None, detail: str) -> None:
        self.path = Path(path) if path is not None else None
        self.detail = detail
        super().__init__(f"{self.path or 'the card'} {detail}")


class CardMissing(CardError, FileNotFoundError):
    """There is no card.json where one was looked for."""


class CardNotJSON(CardError):
    """The file is not a readable JSON document; ``reason`` is what the reader said."""

    def __init__(self, path: Path, detail: str, reason: str) -> None:
        super().__init__(path, f"{detail} ({reason})")
        self.reason = reason


# -- reading typed values -------------------------------------------------------------


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


class _Reader:
    """Reads typed values out of one JSON object, naming the file and field when they are off."""

    def __init__(self, data: Mapping[str, Any], path: Path | None, prefix: str = "") -> None:
        self.data = data
        self.path = path
        self.prefix = prefix

    def get(self, key: str, check: Callable[[Any], bool], what: str) -> Any:
        """``data[key]`` when it is absent, null or passes ``check``; else ``CardError``."""
        value = self.data.get(key)
        if value is None or check(value):
            return value
        raise CardError(self.path, f"has a malformed {self.prefix}{key}: {what}, got {value!r}")

    def text(self, key: str) -> str | None:
        return cast(str | None, self.get(key, _is_str, "expected a string"))

    def integer(self, key: str) -> int | None:
        return cast(int | None, self.get(key, _is_int, "expected an integer"))

    def number(self, key: str) -> float | None:
        return cast(float | None, self.get(key, _is_number, "expected a number"))

    def flag(self, key: str) -> bool | None:
        return cast(bool | None, self.get(key, _is_bool, "expected true or false"))

    def mapping(self, key: str) -> dict[str, Any] | None:
        return cast(dict[str, Any] | None, self.get(key, _is_object, "expected an object"))

    def items(self, key: str, item: Callable[[Any], bool], what: str) -> list[Any] | None:
        """A list whose every item passes ``item``."""

        def check(value: Any) -> bool:
            return isinstance(value, list) and all(item(i) for i in value)

        return cast(list[Any] | None, self.get(key, check, what))

    def nested(self, key: str, parse: Callable[[_Reader], T]) -> T | None:
        value = self.mapping(key)
        return None if value is None else parse(_Reader(value, self.path, f"{key}."))

    def extra(self, known: Iterable[str]) -> dict[str, Any]:
        names = set(known)
        return {k: v for k, v in self.data.items() if k not in names}


def _field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.name not in ("extra", "path")]


# -- the card -------------------------------------------------------------------------

#: The quality figures a card may carry, in the order they are written.
FIGURES = (
    "fid",
    "kid",
    "kid_std",
    "precision",
    "recall",
    "classifier_fd",
    "classifier_precision",
    "classifier_recall",
    "conditional_accuracy",
)


@dataclass
class Quality:
    """The measured figures and how they were measured (``training.evaluate --write-card``)."""

    figures: dict[str, float] = field(default_factory=dict)  # by name, among FIGURES
    #: per metric (fid, kid, pr, cfd, cpr, acc): num_generated, reference, seconds, command,
    #: measured_at, device
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # other keys, kept as they were

    @classmethod
    def read(cls, r: _Reader) -> Quality:
        measured = r.mapping("measured") or {}
        for metric, entry in measured.items():
            if not isinstance(entry, dict):
                raise CardError(r.path, f"has a malformed quality.measured.{metric}: {entry!r}")
        figures = {name: r.number(name) for name in FIGURES}
        return cls(
            figures={name: value for name, value in figures.items() if value is not None},
            measured=measured,
            protocol=r.mapping("protocol") or {},
            extra=r.extra([*FIGURES, "measured", "protocol"]),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quality:
        return cls.read(_Reader(data, None, "quality."))

    @property
    def fid(self) -> float | None:
        return self.figures.get("fid")

    def update(self, results: Mapping[str, float]) -> None:
        """Set figures by name (``{"fid": 22.5}``); names that are not figures go to ``extra``."""
        for name, value in results.items():
            if name in FIGURES:
                self.figures[name] = value
            else:
                self.extra[name] = value

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the figures in FIGURES order, other keys, then measured and protocol."""
        out: dict[str, Any] = {n: self.figures[n] for n in FIGURES if n in self.figures}
        out.update(self.extra)
        if self.measured:
            out["measured"] = self.measured
        if self.protocol:
            out["protocol"] = self.protocol
        return out


@dataclass
class TrainingRun:
    """How the checkpoint was trained: the command that reproduces it, where, how fast."""

    command: str | None = None
    device: str | None = None
    images_per_second: float | None = None
    train_seconds: float | None = None

    @classmethod
    def read(cls, r: _Reader) -> TrainingRun:
        return cls(
            command=r.text("command"),
            device=r.text("device"),
            images_per_second=r.number("images_per_second"),
            train_seconds=r.number("train_seconds"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _field_names(TrainingRun)}


def _dataset_name(r: _Reader) -> str | None:
    """The data set's name; early cards held the checkpoint's data set object instead."""
    value = r.data.get("dataset")
    if isinstance(value, dict):
        return _Reader(value, r.path, "dataset.").text("name")
    return r.text("dataset")


def _image_shape(r: _Reader) -> tuple[int, int, int] | None:
    value = r.data.get("image_shape")
    if value is None:
        return None
    ok = isinstance(value, list | tuple) and len(value) == 3
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise CardError(r.path, f"has a malformed image_shape: expected [H, W, C], got {value!r}")
    return (value[0], value[1], value[2])


@dataclass(kw_only=True)
class ModelCard:
    """One model's card (see the module docstring for each field)."""

    format: str | None = CARD_FORMAT
    name: str
    architecture: str | None = None
    conditional: bool | None = None
    loss: str | None = None
    dataset: str | None = None
    latent_dim: int | None = None
    num_classes: int | None = None
    class_names: list[str] | None = None
    image_shape: tuple[int, int, int] | None = None  # (H, W, C)
    precision: str | None = None
    epochs: int | None = None
    step: int | None = None
    options: dict[str, Any] | None = None
    training: TrainingRun | None = None
    parity: dict[str, Any] | None = None
    quality: Quality | None = None
    inputs: list[dict[str, Any]] | None = None
    outputs: list[dict[str, Any]] | None = None
    opset: int | None = None
    model_file: str | None = MODEL_FILE
    ganserve_version: str | None = None
    git_commit: str | None = None
    created: str | None = None
    exporter: dict[str, Any] | None = None
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # fields this version does not know
    #: the card.json it was loaded from or saved to (not part of the card)
    path: Path | None = field(default=None, compare=False, repr=False)

    # -- reading ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path | str | None = None) -> ModelCard:
        """The card in a parsed JSON object; ``CardError`` naming ``path`` when it is malformed."""
        where = Path(path) if path is not None else None
        if not isinstance(data, Mapping):
            raise CardError(where, "does not hold a JSON object")
        r = _Reader(data, where)
        fmt = r.text("format")
        if fmt is not None and fmt != CARD_FORMAT:
            raise CardError(where, f"has format {fmt!r}; this ganserve reads {CARD_FORMAT}")
        name = r.text("name")
        if not name:
            raise CardError(where, "lacks name")
        names = "expected a list of strings"
        return cls(
            name=name,
            format=fmt,
            architecture=r.text("architecture"),
            conditional=r.flag("conditional"),
            loss=r.text("loss"),
            dataset=_dataset_name(r),
            latent_dim=r.integer("latent_dim"),
            num_classes=r.integer("num_classes"),
            class_names=r.items("class_names", _is_str, names),
            image_shape=_image_shape(r),
            precision=r.text("precision"),
            epochs=r.integer("epochs"),
            step=r.integer("step"),
            options=r.mapping("options"),
            training=r.nested("training", TrainingRun.read),
            parity=r.mapping("parity"),
            quality=r.nested("quality", Quality.read),
            inputs=r.items("inputs", _is_object, "expected a list of objects"),
            outputs=r.items("outputs", _is_object, "expected a list of objects"),
            opset=r.integer("opset"),
            model_file=r.text("model_file"),
            ganserve_version=r.text("ganserve_version"),
            git_commit=r.text("git_commit"),
            created=r.text("created"),
            exporter=r.mapping("exporter"),
            sha256=r.text("sha256"),
            extra=r.extra(_field_names(cls)),
            path=where,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelCard:
        """Read a model directory's card.json (or the card file itself)."""
        file = card_file(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CardMissing(file, "is missing") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CardNotJSON(file, "is not readable", str(exc)) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CardNotJSON(file, "is not valid JSON", str(exc)) from None
        return cls.from_dict(data, file)

    def require(self, *names: str) -> None:
        """``CardError`` naming every one of the fields ``names`` that the card lacks."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise CardError(self.path, f"lacks {', '.join(missing)}")

    # -- writing ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: every known field in the documented order, then the unknown ones."""
        out: dict[str, Any] = {}
        for name in _field_names(ModelCard):
            value = getattr(self, name)
            if isinstance(value, Quality | TrainingRun):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        sha256 = out.pop("sha256")
        out.update(self.extra)
        out["sha256"] = sha256  # last: it is filled in after everything else is written
        return out

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the card (by default where it was loaded from) atomically; returns the file."""
        target = path if path is not None else self.path
        if target is None:
            raise ValueError("the card has no path yet: pass the model directory")
        file = card_file(target)
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, file)
        self.path = file
        return file

    # -- facts derived from the fields --------------------------------------------------

    @property
    def directory(self) -> Path | None:
        """The model directory the card was loaded from."""
        return None if self.path is None else self.path.parent

    def model_path(self, directory: str | os.PathLike[str] | None = None) -> Path:
        """The graph file: ``model_file`` in ``directory`` (default: the card's own)."""
        base = Path(directory) if directory is not None else self.directory
        if base is None:
            raise ValueError(f"card {self.name} has no directory yet: pass one")
        return base / (self.model_file or MODEL_FILE)

    @property
    def fid(self) -> float | None:
        """The measured FID when there is a finite one."""
        fid = self.quality.fid if self.quality is not None else None
        return float(fid) if fid is not None and math.isfinite(fid) else None


def card_file(path: str | os.PathLike[str]) -> Path:
    """``path`` itself when it names a card file, else ``path/card.json``."""
    p = Path(path)
    return p if p.suffix == ".json" else p / CARD_FILE


# -- the one ranking rule -------------------------------------------------------------


def fid_order(card: ModelCard) -> tuple[float, str]:
    """Lower FID first, unmeasured last, then by name."""
    fid = card.fid
    return (math.inf if fid is None else fid), card.name


def ranking_key(card: ModelCard, dataset: str = DEFAULT_DATASET) -> tuple[bool, float, str]:
    """Sort key of "the best model": ``dataset``'s models first, then ``fid_order``.

    FIDs of different data sets are not comparable (MNIST's are lower for any
    model), so a model of another data set never wins on FID.
    """
    return card.dataset != dataset, *fid_order(card)


def best_model(
    cards: Iterable[ModelCard], *, dataset: str = DEFAULT_DATASET, conditional: bool | None = None
) -> ModelCard | None:
    """The first card by ``ranking_key`` (of one kind when ``conditional`` is given)."""
    pool = [c for c in cards if conditional is None or bool(c.conditional) == conditional]
    return min(pool, key=lambda c: ranking_key(c, dataset), default=None)


def default_model(
    cards: Iterable[ModelCard], *, conditional: bool, dataset: str = DEFAULT_DATASET
) -> ModelCard | None:
    """What a request naming no model gets: the best model of its kind.

    Unconditional requests fall back to the best of all models when no
    unconditional one is there (a conditional model draws them too).
    """
    cards = list(cards)
    best = best_model(cards, dataset=dataset, conditional=conditional)
    if best is None and not conditional:
        best = best_model(cards, dataset=dataset)
    return best
