"""Collection config files for ``ldp collections create --file`` (YAML or JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_config_file(path: str | Path) -> Any:
    """A YAML or JSON document (JSON is valid YAML; ``.json`` files are read as JSON)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    import yaml

    return yaml.safe_load(text)
