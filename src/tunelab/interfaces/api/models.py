"""The model ids a server answers to and which adapter each picks: /v1/models lists them, a request's `model`
chooses one (GenRequest.adapter), an unknown id is OpenAI's 404 model_not_found listing the ids."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.interfaces.api.errors import APIError


@dataclass(frozen=True)
class Route:
    """Where a request goes: the id echoed in the answer, and the adapter (None: the model as loaded; '': the base
    model alone; a name: that loaded adapter)."""

    model_id: str
    adapter: str | None


@dataclass(frozen=True)
class ModelRoutes:
    """Model id -> adapter, and the id a request without `model` gets."""

    adapters: dict[str, str | None]
    default_id: str

    def ids(self) -> list[str]:
        """The served ids, the default first."""
        return [self.default_id] + [name for name in self.adapters if name != self.default_id]

    def route(self, name: str | None) -> Route:
        """The route of a request's `model` (left out: the default); unknown: 404 model_not_found."""
        model_id = self.default_id if name is None else name
        if model_id not in self.adapters:
            listed = ", ".join(f"'{i}'" for i in self.ids())
            raise APIError(404, f"The model '{name}' does not exist: this server serves {listed} (GET /v1/models "
                                f"lists them)", param="model", code="model_not_found")
        return Route(model_id, self.adapters[model_id])

    def cards(self, created: int) -> list[dict[str, str | int]]:
        """Every served id as an OpenAI model object."""
        return [model_card(model_id, created) for model_id in self.ids()]


def model_card(model_id: str, created: int) -> dict[str, str | int]:
    """One served id as an OpenAI model object."""
    return {"id": model_id, "object": "model", "created": created, "owned_by": "tunelab"}


def single_model(model_id: str) -> ModelRoutes:
    """One id: the model as loaded, with the run's adapter when it has one (`tunelab api` without --adapters)."""
    return ModelRoutes(adapters={model_id: None}, default_id=model_id)


def several_adapters(base_id: str, names: list[str]) -> ModelRoutes:
    """The base model's id (no adapter; also what a request without `model` gets) and one id per named adapter."""
    return ModelRoutes(adapters={base_id: "", **{name: name for name in names}}, default_id=base_id)
