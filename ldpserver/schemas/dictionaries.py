"""Known-candidate dictionaries: the upload body and the stored dictionary's description."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

#: the most items one dictionary may hold (client_sdk.heavy_hitters.known.MAX_CANDIDATES)
MAX_ITEMS = 1_000_000


class DictionaryPut(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[str] | list[int] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description="the candidate items: distinct items of the collection's domain (strings for a string "
        "or alphabet domain, integers for an integer domain), at most 10^6",
    )


class DictionaryOut(BaseModel):
    sha256: str = Field(description="'sha256:' + hex SHA-256 of the items' canonical JSON list (RFC 8785)")
    items: int = Field(description="how many items the dictionary holds")
    uploaded_at: datetime
