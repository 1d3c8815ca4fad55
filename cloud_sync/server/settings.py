"""Typed settings of the central server: defaults, a TOML file, ``CLOUD_SYNC_*``.

Precedence, lowest first: defaults, the TOML file (``--config`` or
``CLOUD_SYNC_CONFIG``), environment variables (nested with ``__``, for
example ``CLOUD_SYNC_SERVER__PORT=8091``), then explicit overrides such as
command-line flags. config/cloud-sync.example.toml explains every option.
"""

from __future__ import annotations

import contextvars
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from cloud_sync.protocol import MAX_BATCH_BYTES, MAX_BATCH_RECORDS
from cloud_sync.server.store import URL_PREFIXES

CONFIG_ENV_VAR = "CLOUD_SYNC_CONFIG"
_DATABASE_FILE = "cloud-sync.sqlite3"

# The TOML values of the settings being built; read by _FileSource.
_file_values: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "cloud_sync_file_values", default=None
)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the option."""


def _default_data_dir() -> Path:
    """Per-user state folder, so a first run needs no root and no setup."""
    state_home = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local/state"
    return Path(state_home) / "cloud-sync"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    # Bytes of a request body as it arrives (compressed).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Bytes a body may inflate to; bounds gzip bombs.
    max_decompressed_bytes: int = Field(default=4 * 1024 * 1024, ge=MAX_BATCH_BYTES)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)


class DatabaseSettings(_Section):
    # "sqlite:///absolute/path.sqlite3", "sqlite://relative/path.sqlite3" or
    # "postgresql://user@host:5432/db". Empty: SQLite file in data_dir.
    url: str = ""
    # PostgreSQL connection pool bounds.
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    # SQLite: how long a writer waits for another process holding the file.
    busy_timeout_ms: int = Field(default=5000, ge=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value and not value.startswith(URL_PREFIXES):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value


class SyncSettings(_Section):
    # The most records and uncompressed record bytes one batch may carry.
    max_batch_records: int = Field(default=2 * MAX_BATCH_RECORDS, ge=MAX_BATCH_RECORDS)
    # Seconds a site's clock may be off before answers report the skew.
    clock_skew_tolerance_s: float = Field(default=120.0, ge=0)


class AdminSettings(_Section):
    # SHA-256 (hex) of the office API's bearer token; `cloud-sync admin-token`
    # makes one. Empty: the office API refuses every request.
    token_sha256: str = ""

    @field_validator("token_sha256")
    @classmethod
    def _check_hash(cls, value: str) -> str:
        lowered = value.strip().lower()
        if lowered and (len(lowered) != 64 or set(lowered) - set("0123456789abcdef")):
            raise ValueError("must be 64 hex characters (a SHA-256 digest)")
        return lowered


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Settings(BaseSettings):
    """Everything the central server reads from its configuration."""

    model_config = SettingsConfigDict(
        env_prefix="CLOUD_SYNC_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    sync: SyncSettings = SyncSettings()
    admin: AdminSettings = AdminSettings()
    logging: LoggingSettings = LoggingSettings()

    @property
    def database_url(self) -> str:
        """The configured database URL, or the SQLite file in ``data_dir``."""
        if self.database.url:
            return self.database.url
        return f"sqlite://{(self.data_dir / _DATABASE_FILE).resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls)


class _FileSource(PydanticBaseSettingsSource):
    """The values of the TOML file being loaded."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_file_values.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_values.get() or {})


def load_settings(
    config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build the settings; raise :class:`ConfigError` on any bad value."""
    values = _read_config_file(config_file or _env_config_path())
    token = _file_values.set(values)
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    finally:
        _file_values.reset(token)


def _env_config_path() -> Path | None:
    value = os.environ.get(CONFIG_ENV_VAR)
    return Path(value) if value else None


def _read_config_file(config_file: Path | None) -> dict[str, Any]:
    if config_file is None:
        return {}
    try:
        with config_file.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {config_file}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_file} is not valid TOML: {exc}") from exc


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        option = ".".join(str(part) for part in error["loc"])
        problems.append(f"{option}: {error['msg']}")
    return "invalid configuration: " + "; ".join(problems)
