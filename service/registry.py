"""The model registry: every ``models/<name>/`` checked, loaded into ONNX Runtime and warmed up.

A model is served only when its card parses, the sha256 of ``model.onnx`` matches
the card, the graph's inputs and outputs follow the model contract, and a warm-up
run returns uint8 images of the card's shape. Any other model is refused with one
log line naming the reason; the others still serve, and a request naming a refused
model is answered with that reason (``ModelRefused``). A folder with neither
``card.json`` nor ``model.onnx``, or a hidden one, is skipped with one log line.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]

from ganserve.card import CARD_FILE, CardError, CardMissing, CardNotJSON, ModelCard, default_model
from ganserve.latent import make_latents
from ganserve.session import cpu_session_options
from service import graph_rewrite
from service.config import Settings
from service.errors import ModelNotFound, ModelRefused

logger = logging.getLogger("service.registry")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
REQUIRED_CARD_FIELDS = ("conditional", "latent_dim", "image_shape", "sha256")

# Whether a session could be created on CUDA in this process: asked once, because a
# failed attempt costs time and logs ONNX Runtime's own error each time.
_cuda_usable: bool | None = None
_cuda_lock = threading.Lock()


class ModelError(Exception):
    """A model directory that cannot be served; the message says why."""


# What a model directory's files were when they were read: (inode, size, mtime in ns)
# of card.json and of model.onnx, None for a missing file. A new fingerprint means
# new files (a copy in progress changes it again, so it is read again).
FileStamp = tuple[int, int, int] | None
Fingerprint = tuple[FileStamp, FileStamp]


def fingerprint(model_dir: Path) -> Fingerprint:
    """The stamps of a model directory's card.json and model.onnx."""

    def stamp(path: Path) -> FileStamp:
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    return stamp(model_dir / "card.json"), stamp(model_dir / "model.onnx")


def scan_models_dir(root: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The model directories under ``root`` by name, and the skipped folders with the reason.

    A model directory is a folder holding card.json or model.onnx (a half-made one is
    a model that will be refused with the reason). Hidden folders (a new version being
    staged, say) and folders with neither file are skipped; plain files are ignored.
    """
    models: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for path in sorted(root.iterdir()):
        if not path.is_dir():
            continue
        if path.name.startswith("."):
            skipped[path.name] = "a hidden folder"
        elif (path / "card.json").exists() or (path / "model.onnx").exists():
            models[path.name] = path
        else:
            skipped[path.name] = "neither card.json nor model.onnx in it"
    return models, skipped


def log_skipped(root: Path, name: str, reason: str) -> None:
    """One log line for a skipped folder: a warning, unless it is hidden on purpose."""
    log = logger.info if name.startswith(".") else logger.warning
    log("skipped %s: %s", root / name, reason)


@dataclass
class LoadedModel:
    """One servable generator: its card, its ORT session and the facts routes need."""

    name: str
    card: ModelCard
    session: ort.InferenceSession
    provider: str  # the execution provider the session really runs on
    latent_dim: int
    conditional: bool
    num_classes: int
    class_names: list[str] | None
    image_shape: tuple[int, int, int]  # (H, W, C)
    io_binding: bool = False
    graph_rewrites: tuple[str, ...] = ()  # service.graph_rewrite's rewrites in the served graph
    intra_op_threads: int = 0  # ONNX Runtime's threads per session run (CPU provider)

    def run(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """uint8 [B, H, W, C] images for float32 latents z [B, latent_dim] (blocking)."""
        feeds: dict[str, np.ndarray] = {"z": np.ascontiguousarray(z, dtype=np.float32)}
        if self.conditional:
            if labels is None:
                raise ValueError(f"model {self.name} is conditional and needs labels")
            feeds["label"] = np.ascontiguousarray(labels, dtype=np.int64)
        images: np.ndarray
        if not self.io_binding:
            images = self.session.run(["image"], feeds)[0]
            return images
        # Explicit binding on CUDA: the inputs are copied to the device once and the
        # uint8 output is allocated directly in host memory.
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        binding.bind_output("image", "cpu")
        self.session.run_with_iobinding(binding)
        images = binding.copy_outputs_to_cpu()[0]
        return images


@dataclass
class Registry:
    """The served models by name, the refused ones with their reasons, and the defaults."""

    models: dict[str, LoadedModel] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    default_model: str | None = None
    default_conditional_model: str | None = None
    # The files each served or refused model was read from, and the folders skipped.
    sources: dict[str, Fingerprint] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def get(self, name: str | None, *, conditional: bool = False) -> LoadedModel:
        """The model called ``name``, or the default (conditional) one when name is None."""
        if name is None:
            name = self.default_conditional_model if conditional else self.default_model
            if name is None:
                kind = "conditional model" if conditional else "model"
                available = sorted(self.models)
                served = ", ".join(available) or "none"
                raise ModelNotFound(f"no {kind} is being served; models: {served}", available)
        model = self.models.get(name)
        if model is not None:
            return model
        if name in self.refused:
            raise ModelRefused(name, self.refused[name])
        available = sorted(self.models)
        served = ", ".join(available) or "none"
        raise ModelNotFound(f"unknown model {name!r}; available models: {served}", available)


def session_options(settings: Settings) -> ort.SessionOptions:
    """ORT options: ``settings.intra_op_threads`` (default: the usable cores, at most 8)
    intra-op threads, one inter-op thread, no spinning."""
    return cpu_session_options(settings.intra_op_threads)


def nvidia_driver_present() -> bool:
    """Whether the NVIDIA driver library loads: without it CUDA cannot work, so don't try."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def create_session(model_bytes: bytes, settings: Settings) -> tuple[ort.InferenceSession, str]:
    """An ORT session on CUDA when asked for or usable, else on the CPU; and its provider."""
    global _cuda_usable
    options = session_options(settings)
    want_cuda = settings.provider == "cuda" or (
        settings.provider == "auto"
        and _cuda_usable is not False
        and CUDA in ort.get_available_providers()
        and nvidia_driver_present()
    )
    if want_cuda:
        with _cuda_lock:
            cuda_options = {"device_id": 0, "cudnn_conv_algo_search": "HEURISTIC"}
            session = ort.InferenceSession(
                model_bytes, sess_options=options, providers=[(CUDA, cuda_options), CPU]
            )
            provider = session.get_providers()[0]
            _cuda_usable = provider == CUDA
        if provider == CUDA:
            return session, CUDA
        if settings.provider == "cuda":
            raise ModelError(
                "the CUDA provider was asked for (GANSERVE_PROVIDER=cuda) but is not usable here"
                " (onnxruntime-gpu needs an NVIDIA driver, CUDA 13 and cuDNN 9)"
            )
        logger.warning("CUDA provider not usable here; running on the CPU")
        return session, provider
    session = ort.InferenceSession(model_bytes, sess_options=options, providers=[CPU])
    return session, session.get_providers()[0]


def read_card(model_dir: Path) -> ModelCard:
    """The card of a model directory, with the fields the service needs checked."""
    try:
        card = ModelCard.load(model_dir)
        card.require(*REQUIRED_CARD_FIELDS)
    except CardMissing:
        raise ModelError(f"{CARD_FILE} is missing") from None
    except CardNotJSON as exc:
        raise ModelError(f"{CARD_FILE} is not readable JSON ({exc.reason})") from None
    except CardError as exc:
        raise ModelError(f"{CARD_FILE} {exc.detail}") from None
    if card.name != model_dir.name:
        raise ModelError(f"card names {card.name!r} but the directory is {model_dir.name!r}")
    return card


def _check_io(session: ort.InferenceSession, conditional: bool, latent_dim: int) -> None:
    """Raise ModelError unless the graph has the contract's inputs and output."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    expected = {"z", "label"} if conditional else {"z"}
    if set(inputs) != expected:
        raise ModelError(
            f"model inputs are {sorted(inputs)}, expected {sorted(expected)} "
            f"for a {'conditional' if conditional else 'unconditional'} model"
        )
    z = inputs["z"]
    if z.type != "tensor(float)" or len(z.shape) != 2 or z.shape[1] != latent_dim:
        raise ModelError(f"input z is {z.type} {z.shape}, expected float [batch, latent_dim]")
    if "label" in inputs and inputs["label"].type != "tensor(int64)":
        raise ModelError(f"input label is {inputs['label'].type}, expected int64")
    if "image" not in outputs or outputs["image"].type != "tensor(uint8)":
        raise ModelError("the model has no uint8 output called 'image'")


def load_model(model_dir: Path, settings: Settings) -> LoadedModel:
    """Check, load and warm up one model directory; raise ModelError when it cannot serve."""
    card = read_card(model_dir)
    assert card.latent_dim is not None and card.image_shape is not None  # read_card requires them
    conditional = bool(card.conditional)
    num_classes = (card.num_classes or 0) if conditional else 0
    if card.latent_dim < 1 or (conditional and num_classes < 1):
        raise ModelError(
            "card.json needs latent_dim >= 1 and, for a conditional model, num_classes >= 1"
        )
    try:
        model_bytes = card.model_path(model_dir).read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{card.model_file} is missing") from None
    except OSError as exc:
        raise ModelError(f"{card.model_file} is not readable ({exc})") from None
    digest = hashlib.sha256(model_bytes).hexdigest()
    if digest != str(card.sha256).lower():
        raise ModelError(f"sha256 of {card.model_file} is {digest}, the card says {card.sha256}")
    try:
        session, provider = create_session(model_bytes, settings)
    except ModelError:
        raise
    except Exception as exc:  # ORT raises its own types for unreadable graphs
        raise ModelError(f"ONNX Runtime cannot load {card.model_file} ({exc})") from None
    _check_io(session, conditional, card.latent_dim)
    rewrites: tuple[str, ...] = ()
    if settings.graph_rewrite and provider == CPU:
        feeds = probe_feeds(card.latent_dim, num_classes, max(2, min(settings.max_batch, 64)))
        session, rewrites = rewritten_session(model_dir.name, model_bytes, session, feeds, settings)
    model = LoadedModel(
        name=model_dir.name,
        card=card,
        session=session,
        provider=provider,
        latent_dim=card.latent_dim,
        conditional=conditional,
        num_classes=num_classes,
        class_names=card.class_names,
        image_shape=card.image_shape,
        io_binding=provider == CUDA and settings.cuda_io_binding,
        graph_rewrites=rewrites,
        intra_op_threads=session_options(settings).intra_op_num_threads,
    )
    if settings.warmup:
        warm_up(model, settings.max_batch)
    return model


def probe_feeds(latent_dim: int, num_classes: int, n: int) -> dict[str, np.ndarray]:
    """Seeded latents (and cycling labels for a conditional model) to probe a graph with."""
    feeds = {"z": make_latents(0, n, latent_dim)}
    if num_classes:
        feeds["label"] = np.arange(n, dtype=np.int64) % num_classes
    return feeds


def rewritten_session(
    name: str,
    model_bytes: bytes,
    session: ort.InferenceSession,
    feeds: dict[str, np.ndarray],
    settings: Settings,
) -> tuple[ort.InferenceSession, tuple[str, ...]]:
    """A CPU session of the graph as ``service.graph_rewrite`` rewrites it, when a rewrite
    applies and its images match the original session's on ``feeds``; else ``session``."""
    try:
        # the shapes need only two rows; the check runs every row of ``feeds``
        result = graph_rewrite.rewrite(model_bytes, {k: v[:2] for k, v in feeds.items()})
        if not result.applied:
            return session, ()
        rewritten = ort.InferenceSession(
            result.model_bytes, sess_options=session_options(settings), providers=[CPU]
        )
        mismatch = graph_rewrite.check(
            session.run(["image"], feeds)[0], rewritten.run(["image"], feeds)[0]
        )
    except Exception as exc:  # the original graph still serves
        logger.warning("model %s: serving its graph as is (rewrite failed: %s)", name, exc)
        return session, ()
    if mismatch is not None:
        logger.warning("model %s: serving its graph as is (the rewritten one: %s)", name, mismatch)
        return session, ()
    logger.info("model %s: serving the rewritten graph (%s)", name, ", ".join(result.applied))
    return rewritten, result.applied


def try_load_model(model_dir: Path, settings: Settings) -> LoadedModel | str:
    """``load_model``, logged: the model, or the reason it was refused."""
    try:
        model = load_model(model_dir, settings)
    except Exception as exc:  # any failure refuses this model only
        reason = str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
        logger.error("refused model %s: %s", model_dir.name, reason)
        return reason
    logger.info(
        "loaded model %s (%s, latent_dim %d, image %s) on %s",
        model.name,
        "conditional" if model.conditional else "unconditional",
        model.latent_dim,
        "x".join(map(str, model.image_shape)),
        model.provider,
    )
    return model


def warm_up(model: LoadedModel, max_batch: int) -> None:
    """Run one latent and one full batch, checking the output against the card."""
    for n in sorted({1, max_batch}):
        feeds = probe_feeds(model.latent_dim, model.num_classes, n)
        try:
            images = model.run(feeds["z"], feeds.get("label"))
        except Exception as exc:
            raise ModelError(f"warm-up run failed ({exc})") from None
        expected = (n, *model.image_shape)
        if images.dtype != np.uint8 or images.shape != expected:
            raise ModelError(
                f"warm-up gave {images.dtype} {list(images.shape)}, the card implies uint8 "
                f"{list(expected)}"
            )


def choose_defaults(registry: Registry, settings: Settings) -> None:
    """Set the default models: the configured ones, else the best by ``ganserve.card``'s rule."""
    models = registry.models
    cards = [m.card for m in models.values()]
    for attr, conditional in (("default_model", False), ("default_conditional_model", True)):
        wanted = getattr(settings, attr)
        if wanted is not None and wanted in models:
            if conditional and not models[wanted].conditional:
                logger.error("GANSERVE_DEFAULT_CONDITIONAL_MODEL=%s is unconditional", wanted)
            else:
                setattr(registry, attr, wanted)
                continue
        elif wanted is not None:
            logger.error("GANSERVE_%s=%s is not being served", attr.upper(), wanted)
        best = default_model(cards, conditional=conditional, dataset=settings.default_dataset)
        setattr(registry, attr, None if best is None else best.name)


def load_registry(settings: Settings) -> Registry:
    """Load every model under ``settings.models_dir``; log and skip the ones that fail."""
    registry = Registry()
    root = Path(settings.models_dir)
    if not root.is_dir():
        logger.error("models directory %s does not exist; no models to serve", root)
        return registry
    model_dirs, registry.skipped = scan_models_dir(root)
    for name, reason in registry.skipped.items():
        log_skipped(root, name, reason)
    for name, model_dir in model_dirs.items():
        registry.sources[name] = fingerprint(model_dir)
        result = try_load_model(model_dir, settings)
        if isinstance(result, str):
            registry.refused[name] = result
        else:
            registry.models[name] = result
    choose_defaults(registry, settings)
    if not registry.models:
        logger.error("no model under %s can be served", root)
    return registry
