"""Models shared by every resource: the problem document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    path: str = Field(description="JSON pointer to the offending field, e.g. /budget/cap_lifetime")
    message: str
    code: str = Field(description="stable machine-readable error code")


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="stable URI naming the problem, e.g. https://ldp.example/problems/validation")
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(default=None, description="validation errors with field paths")


ERROR_RESPONSES: dict[str | int, Any] = {401: Problem, 403: Problem, 422: Problem}
