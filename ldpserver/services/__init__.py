"""Business logic, free of HTTP: collections, ingestion, the ledger, privacy, keys."""
