"""Server settings, read from the environment (pydantic-settings).

| variable | default | meaning |
| --- | --- | --- |
| ``DATABASE_URL`` | SQLite file in the data dir | ``sqlite:///path`` or ``postgresql+psycopg://user@host/db`` |
| ``LDP_DATA_DIR`` | ``./var`` | where the embedded SQLite database lives |
| ``LDP_MAX_BODY_BYTES`` | 8 MiB | larger request bodies get 413 |
| ``LDP_MAX_DICTIONARY_BYTES`` | 64 MiB | the body limit of a dictionary upload (up to 10^6 items) |
| ``LDP_MAX_BATCH_REPORTS`` | 5000 | more reports in one upload get 413 |
| ``LDP_MAX_REPORTS_PER_DEVICE_EPOCH`` | 1000 | accepted reports per device and epoch (more: ``device_epoch_limit``) |
| ``LDP_MAX_JSON_DEPTH`` | 16 | deeper JSON documents get 400 |
| ``LDP_REPORT_RETENTION_DAYS`` | 30 | raw reports older than this (and past their epoch window) may be purged |
| ``LDP_DB_POOL_SIZE`` | 5 | connections per process (PostgreSQL) |
| ``LDP_SQLITE_BUSY_TIMEOUT_MS`` | 30000 | how long a SQLite writer waits for the lock |
| ``LDP_LOG_LEVEL`` / ``LDP_LOG_JSON`` | INFO / true | structured logs on stderr |
| ``LDP_CHECK_MIGRATIONS`` | true | refuse to start unless the database is at the migrations' head |
| ``LDP_CORS_ORIGINS`` | empty | comma-separated origins allowed to call the device endpoints from a browser |
| ``LDP_FORWARDED_HOPS`` | 0 | trusted proxies in front: the client address is that many hops from the right of XFF |
| ``LDP_ENROL_MAX_DEVICES`` | 1000000 | devices one client key may enrol in all (per-key override) |
| ``LDP_ENROL_PER_HOUR`` | 10000 | enrolments per client key per hour (per-key override) |
| ``LDP_ENROL_PER_ADDRESS_HOUR`` | 20 | enrolments per client key and source address per hour (per-key override) |
| ``LDP_DEVICE_KEY`` | unset | server secret (32+ characters) tagging issued device secrets (no look-up to prove them) |
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDP_", extra="ignore", frozen=True, hide_input_in_errors=True)

    data_dir: Path = Path("./var")
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "LDP_DATABASE_URL", "database_url"),
    )
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_dictionary_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_batch_reports: int = Field(default=5000, ge=1, le=20000)
    # bounds the device row's ``recent`` reports (rewritten with every batch of the device):
    # a memoized collection's re-reports are free, so its caps would not bound them
    max_reports_per_device_epoch: int = Field(default=1000, ge=1, le=1_000_000)
    max_json_depth: int = Field(default=16, ge=4, le=200)
    report_retention_days: int = Field(default=30, ge=1)
    db_pool_size: int = Field(default=5, ge=1, le=200)
    db_max_overflow: int = Field(default=20, ge=0, le=500)
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    log_level: str = "INFO"
    log_json: bool = True
    check_migrations: bool = True
    cors_origins: str = ""
    forwarded_hops: int = Field(default=0, ge=0, le=10)
    enrol_max_devices: int = Field(default=1_000_000, ge=0)
    enrol_per_hour: int = Field(default=10_000, ge=0)
    enrol_per_address_hour: int = Field(default=20, ge=0)
    # tags the device secrets it issues (services/devices.py); a secret, like a TLS key:
    # SecretStr keeps it out of reprs and logs
    device_key: SecretStr | None = Field(default=None, min_length=32)

    @field_validator("device_key", mode="before")
    @classmethod
    def _empty_device_key_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            path = (self.data_dir / "ldp.sqlite3").resolve()
            object.__setattr__(self, "database_url", f"sqlite:///{path}")
        return self

    @property
    def cors_origin_set(self) -> frozenset[str]:
        return frozenset(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())

    @property
    def device_key_bytes(self) -> bytes | None:
        """``LDP_DEVICE_KEY`` as bytes, the secret the device-secret tags derive from (None: not set)."""
        return None if self.device_key is None else self.device_key.get_secret_value().encode("utf-8")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def redacted_database_url(self) -> str:
        """The URL without its password, for logs and messages."""
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)
