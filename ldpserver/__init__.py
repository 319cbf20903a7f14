"""The LDP analytics server: collections, idempotent ingestion, budget ledger, releases."""
