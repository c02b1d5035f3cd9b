"""Request and response bodies. Image requests come as JSON (POST) or query parameters (GET).

In a query string a list is either repeated (``dims=5&dims=20``) or comma-separated
(``dims=5,20``); both mean the same list.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ganserve.latent import REPORT_VALUES

MAX_SEED = 2**63 - 1
MAX_LIST = 1024

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Label = int | str
Mode = Literal["set", "add", "scale", "noise", "label"]
ImageFormat = Literal["png", "json"]


def _split_commas(value: Any) -> Any:
    """Turn query-string lists ("5,20" or ["5,20", "40"]) into lists of items."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [part.strip() for v in value for part in v.split(",") if part.strip()]
    return value


class GridRequest(BaseModel):
    """Fields every image request shares."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = Field(
        default=None, description="A served model's name; omitted: the default model.", min_length=1
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SEED,
        description="Names the latents (the latent contract); omitted: a random seed, "
        "returned in X-Seed.",
        examples=[3],
    )
    scale: int = Field(
        default=1, ge=1, description="Integer nearest-neighbour upscaling of each cell."
    )
    padding: int = Field(default=2, ge=0, description="Pixels between cells and around the grid.")
    format: ImageFormat = Field(
        default="png", description="png: one grid image; json: each cell as a base64 PNG."
    )


class GenerateRequest(GridRequest):
    """A grid of ``n`` images from one seed; image i uses latent row i of the seed's batch."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"model": "dcgan-fashion", "n": 16, "seed": 3}]}
    )

    n: int = Field(default=16, ge=1, description="Number of images.", examples=[16])
    columns: int | None = Field(
        default=None, ge=1, description="Grid columns; omitted: ceil(sqrt(n))."
    )


class ConditionalRequest(GridRequest):
    """One row per label from a conditional model; column j uses the same latent in every row."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"model": "cgan-fashion", "labels": ["Sneaker", 0, 8], "n": 8, "seed": 3}]
        }
    )

    labels: list[Label] | None = Field(
        default=None,
        max_length=MAX_LIST,
        description="Class indices or class names (e.g. 'Sneaker'); omitted: every class.",
        examples=[["Sneaker", "Bag"], [0, 7]],
    )
    n: int = Field(default=8, ge=1, description="Images per label.")
    columns: int | None = Field(
        default=None, ge=1, description="Grid columns; omitted: n, so each label is one row."
    )

    _split = field_validator("labels", mode="before")(_split_commas)


class PerturbRequest(GridRequest):
    """The reports' latent experiment: one row per (dim, value), one column per base sample."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"seed": 0},
                {"seed": 0, "mode": "scale", "values": [0.5, 1, 2]},
                {"seed": 0, "dims": [5, 20], "values": [-3, 3], "mode": "add"},
            ]
        }
    )

    n: int = Field(default=8, ge=1, description="Base samples (grid columns).")
    mode: Mode = Field(
        default="set",
        description="set: z[d] = v; add: z[d] += v; scale: z[d] *= v; noise: z[d] += v * "
        "N(0, 1) (seeded); label (conditional models): one row per label, latents fixed.",
    )
    dims: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None,
        max_length=MAX_LIST,
        description="Latent dimensions. Omitted with mode=set: the reports' 5, 20, 40, 60, 80; "
        "omitted or empty with add, scale or noise: the whole vector.",
        examples=[[5, 20, 40, 60, 80]],
    )
    values: list[FiniteFloat] = Field(
        default=list(REPORT_VALUES),
        min_length=1,
        max_length=MAX_LIST,
        description="Values applied to each dimension (bounded by the service's limit).",
        examples=[[-3, 0, 3], [0.5, 1, 2]],
    )
    label: Label | None = Field(
        default=None,
        description="Conditional models: the class of every cell (index or name); omitted: 0, "
        "as in the offline experiments.",
    )
    labels: list[Label] | None = Field(
        default=None,
        max_length=MAX_LIST,
        description="mode=label: the rows' classes; omitted: every class.",
    )

    _split = field_validator("dims", "values", "labels", mode="before")(_split_commas)


class ImageCell(BaseModel):
    """One image of a grid, with what it takes to make it again."""

    row: int
    column: int
    seed: int = Field(description="The seed of the latent batch this image's latent comes from.")
    index: int = Field(description="Row of make_latents(seed, n, latent_dim) used as the latent.")
    label: int | None = Field(default=None, description="The class index (conditional models).")
    class_name: str | None = None
    dim: int | None = Field(
        default=None, description="/perturb: the dimension changed (None: all)."
    )
    value: float | None = Field(default=None, description="/perturb: the value applied.")
    png_base64: str


class ImagesResponse(BaseModel):
    """``format=json``: the grid's cells as separate PNG images."""

    model: str
    seed: int
    rows: int
    columns: int
    images: list[ImageCell]


class ModelInfo(BaseModel):
    """A served model: its card and where it runs."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    provider: str = Field(description="The ONNX Runtime execution provider it runs on.")
    intra_op_threads: int = Field(
        default=0, description="ONNX Runtime's threads per session run on the CPU provider."
    )
    graph_rewrites: list[str] = Field(
        default_factory=list,
        description="Rewrites of the model file's graph that the service runs instead of the"
        " file's own (each checked against the original's images at load; empty: the file as is).",
    )
    default: bool = Field(description="Whether requests without a model get this one.")
    default_conditional: bool = Field(
        description="Whether /conditional requests without a model get this one."
    )
    conditional: bool
    latent_dim: int
    num_classes: int
    class_names: list[str] | None
    image_shape: list[int] = Field(description="[height, width, channels]")
    card: dict[str, Any]


class ModelsResponse(BaseModel):
    """Every served model, the defaults, and the models refused with the reason."""

    default_model: str | None
    default_conditional_model: str | None
    models: list[ModelInfo]
    refused: dict[str, str] = Field(
        default_factory=dict,
        description="Model folders that are not served (or whose new version is not), and why.",
    )


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: the models served and those refused at load, with the reason."""

    status: Literal["ready"] = "ready"
    models: list[str]
    refused: dict[str, str]


class ReloadResponse(BaseModel):
    """What re-reading the models directory changed, and the models served now."""

    added: list[str]
    replaced: list[str] = Field(description="New versions now served; the old ones finish.")
    removed: list[str]
    refused: dict[str, str] = Field(description="Refused in this reload, and why.")
    models: list[str]


class ErrorResponse(BaseModel):
    """An error, in FastAPI's shape: a message, or a list of validation errors."""

    detail: str | list[dict[str, Any]]
