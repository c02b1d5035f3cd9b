"""The served models and their cards."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.deps import RegistryDep, require_api_key
from service.registry import LoadedModel, Registry
from service.schemas import ErrorResponse, ModelInfo, ModelsResponse

router = APIRouter(prefix="/models", tags=["models"], dependencies=[Depends(require_api_key)])


def model_info(model: LoadedModel, registry: Registry) -> ModelInfo:
    """A model's card and runtime facts."""
    return ModelInfo(
        name=model.name,
        provider=model.provider,
        graph_rewrites=list(model.graph_rewrites),
        intra_op_threads=model.intra_op_threads,
        default=model.name == registry.default_model,
        default_conditional=model.name == registry.default_conditional_model,
        conditional=model.conditional,
        latent_dim=model.latent_dim,
        num_classes=model.num_classes,
        class_names=model.class_names,
        image_shape=list(model.image_shape),
        card=model.card.to_dict(),
    )


@router.get("", responses={401: {"model": ErrorResponse}})
async def list_models(registry: RegistryDep) -> ModelsResponse:
    """List every served model with its card, execution provider and the defaults."""
    return ModelsResponse(
        default_model=registry.default_model,
        default_conditional_model=registry.default_conditional_model,
        models=[model_info(m, registry) for _, m in sorted(registry.models.items())],
        refused=dict(sorted(registry.refused.items())),
    )


@router.get(
    "/{name}",
    responses={
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        503: {"model": ErrorResponse, "description": "The model was refused (the reason)."},
    },
)
async def read_model(name: str, registry: RegistryDep) -> ModelInfo:
    """Read one model's card and execution provider."""
    return model_info(registry.get(name), registry)
