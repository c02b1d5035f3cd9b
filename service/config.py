"""The service's settings: one ``Settings`` object, read from ``GANSERVE_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ganserve.card import DEFAULT_DATASET


class Settings(BaseSettings):
    """Everything the service can be told; each field is also ``GANSERVE_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GANSERVE_", extra="ignore", protected_namespaces=()
    )

    # Models
    models_dir: Path = Path("models")  # one <name>/model.onnx + <name>/card.json per model
    # Unset defaults: the best model by ganserve.card's rule (the lowest card FID, then the
    # name, among default_dataset's models), unconditional for default_model, conditional
    # for default_conditional_model.
    default_model: str | None = None
    default_conditional_model: str | None = None
    default_dataset: str = DEFAULT_DATASET  # FIDs only compare within one data set
    # Seconds between re-scans of models_dir (new, replaced and removed models); 0: off.
    model_poll_seconds: float = Field(default=0.0, ge=0)

    # Server
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # uvicorn's access log, one line per request; off by default: writing it costs every
    # request CPU and a write to stderr, and /metrics counts requests by route and status
    access_log: bool = False
    api_key: SecretStr | None = None  # set: every image and model request needs it as a Bearer
    cors_origins: list[str] = []  # origins whose pages may call the API (JSON list, or ["*"])
    # Seconds an idle kept-alive connection stays open. Longer than the idle timeout of the
    # clients and load balancers in front (60 s for AWS ALB and nginx's upstream keepalive),
    # so that they close idle connections first and never send a request on a connection the
    # server is closing (uvicorn's 5 s default races httpx's 5 s pool expiry).
    keepalive_timeout_s: int = Field(default=75, ge=1)
    # FastAPI's native OpenTelemetry (spans, metrics, logs to a configured provider); off, no
    # request pays for checking whether a provider is configured (Prometheus is always there)
    opentelemetry: bool = False
    # Answer a plain image POST before the middleware stack (service.fastpath); off: every
    # request takes the full stack (answers are the same; this is for comparing the two)
    fast_path: bool = True
    # Send a response's head and body in one write (service.http; python -m service only)
    coalesce_writes: bool = True

    # Request limits
    max_n: int = Field(
        default=256, ge=1
    )  # most images (or base samples, or images per label) asked for
    max_images: int = Field(default=1024, ge=1)  # most cells in one grid
    max_grid_pixels: int = Field(default=4096 * 4096, ge=1)  # most pixels in one response
    max_scale: int = Field(default=8, ge=1)  # largest nearest-neighbour upscaling
    max_padding: int = Field(default=16, ge=0)
    max_abs_value: float = Field(default=10.0, gt=0)  # bound on /perturb values
    max_body_bytes: int = Field(default=65536, ge=1)  # larger request bodies get 413
    # The same for /v2/models/{name}/infer, whose tensors (JSON or binary) are larger.
    max_infer_body_bytes: int = Field(default=8 * 2**20, ge=1)

    # Batching
    max_batch: int = Field(default=64, ge=1)  # most latents in one session run
    max_wait_ms: float = Field(default=2.0, ge=0)  # how long a run waits for more requests
    max_queue: int = Field(default=512, ge=1)  # most requests waiting per model before 503
    max_concurrent_runs: int = Field(default=2, ge=1)  # runs per model at once (full batches)
    # Session runs of at most this many latents run on the event loop itself, without the
    # hand-off to a worker thread and back (0: every run in a worker thread)
    inline_max_rows: int = Field(default=0, ge=0)

    # ONNX Runtime
    provider: Literal["auto", "cuda", "cpu"] = "auto"
    # 0: the usable cores, at most 8 (shared out among `python -m service --workers` processes)
    intra_op_threads: int = Field(default=0, ge=0)
    cuda_io_binding: bool = True  # on CUDA, bind inputs/outputs explicitly (IO binding)
    # Serve the graph with service.graph_rewrite's rewrites (CPU provider; each checked
    # against the original graph's images at load)
    graph_rewrite: bool = True
    warmup: bool = True  # run each model once before reporting ready
