"""Alembic migrations of the server, shipped inside the server distribution as ``ldpserver.migrations``."""
