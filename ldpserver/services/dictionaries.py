"""Known-candidate dictionaries: the analyst's list of candidate items of a ``known``
heavy-hitter collection (docs/heavy_hitters.md, "Known-candidate mode").

The dictionary is validated and encoded once, at upload, by the SDK
(``KnownCandidates.dictionary``: distinct items of the collection's domain, at most 10^6),
and stored with its 32-bit keys, so a release only reads two blobs. It is release input,
not device config: devices report the same way whatever the dictionary, so it can be
replaced at any time; each release names the SHA-256 of the dictionary it used. The
dictionary itself is the analyst's, not user data: it carries no privacy cost.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, overload

import numpy as np
from sqlalchemy import Connection, Engine, delete, insert, select

from ldpserver.db import read_transaction, write_transaction
from ldpserver.errors import ProblemError
from ldpserver.kinds import ADAPTERS
from ldpserver.models_release import Dictionary
from ldpserver.services.collections import CollectionRuntime

dictionaries_t = Dictionary.__table__


def _protocol(c: CollectionRuntime) -> Any:
    """The collection's known-candidate protocol, or a 409 problem saying why there is none."""
    sdk = None if c.protocol is None else c.protocol.protocol
    if sdk is None or not ADAPTERS[c.kind].takes_dictionary(sdk):
        raise ProblemError(
            "conflict",
            "only heavy-hitter collections of protocol 'known' take a dictionary "
            f"(this one is {c.kind!r}, protocol {c.config.get('mechanism', {}).get('protocol')!r})",
        )
    return sdk


def metadata(row: Any) -> dict[str, Any]:
    return {"sha256": row.sha256, "items": int(row.item_count), "uploaded_at": row.uploaded_at}


def put_dictionary(engine: Engine, c: CollectionRuntime, items: list[Any], key_id: str, at: datetime) -> dict[str, Any]:
    """Validate, encode and store (replacing any earlier one) the collection's dictionary."""
    from client_sdk.errors import LDPError

    sdk = _protocol(c)
    try:
        encoded = sdk.dictionary(items)
    except (LDPError, ValueError) as exc:  # ConfigError, ItemEncodingError
        raise ProblemError("validation", f"dictionary refused: {exc}") from None
    lines = "\n".join(json.dumps(item, ensure_ascii=False) for item in encoded.items)  # JSON has no raw newline
    blob = zlib.compress(lines.encode(), 6)
    keys = np.asarray(encoded.keys, dtype="<u4").tobytes()
    row = {
        "collection_id": c.id,
        "sha256": encoded.sha256,
        "item_count": len(encoded.items),
        "items": blob,
        "keys": keys,
        "uploaded_at": at,
        "uploaded_by": key_id,
    }
    with write_transaction(engine) as conn:
        conn.execute(delete(dictionaries_t).where(dictionaries_t.c.collection_id == c.id))
        conn.execute(insert(dictionaries_t).values(**row))
    return {"sha256": encoded.sha256, "items": len(encoded.items), "uploaded_at": at}


def get_metadata(engine: Engine, c: CollectionRuntime) -> dict[str, Any]:
    _protocol(c)
    with read_transaction(engine) as conn:
        row = conn.execute(
            select(dictionaries_t.c.sha256, dictionaries_t.c.item_count, dictionaries_t.c.uploaded_at).where(
                dictionaries_t.c.collection_id == c.id
            )
        ).first()
    if row is None:
        raise ProblemError("not-found", f"collection {c.id!r} has no dictionary yet: PUT one")
    return metadata(row)


class StoredItems(Sequence[Any]):
    """The stored items, decoded one at a time: a release reads only the few it tests, so
    10^6 items are never all Python objects (about 60 MB more peak memory)."""

    def __init__(self, blob: bytes, count: int) -> None:
        self.data = zlib.decompress(blob)
        ends = np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == 0x0A)
        self.starts = np.concatenate([[0], ends + 1]).astype(np.int64)
        self.ends = np.concatenate([ends, [len(self.data)]]).astype(np.int64)
        if self.starts.size != count:
            raise ValueError(f"stored dictionary holds {self.starts.size} items, its row says {count}")

    def __len__(self) -> int:
        return int(self.starts.size)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self))[index]  # bounds and negative indices as a list's
        return json.loads(self.data[self.starts[i] : self.ends[i]])


def load_dictionary(conn: Connection, c: CollectionRuntime) -> Any:
    """The stored dictionary as the SDK's ``KnownDictionary`` (None when none was uploaded)."""
    from client_sdk.heavy_hitters.known import KnownDictionary

    row = conn.execute(select(dictionaries_t).where(dictionaries_t.c.collection_id == c.id)).first()
    if row is None:
        return None
    keys = np.frombuffer(row.keys, dtype="<u4").astype(np.uint64)
    return KnownDictionary(StoredItems(row.items, int(row.item_count)), keys, row.sha256)
