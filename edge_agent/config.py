"""Typed settings: embedded defaults, a TOML file, ``EDGE_AGENT_*`` environment.

Precedence, lowest first: defaults, the TOML file (``--config`` or
``EDGE_AGENT_CONFIG``), environment variables (nested with ``__``, for
example ``EDGE_AGENT_SERVER__PORT=8081``), then explicit overrides such as
command-line flags. A bad value raises :class:`ConfigError` naming the option.
"""

from __future__ import annotations

import contextvars
import os
import tomllib
import zoneinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from edge_agent.credentials import apply_credentials

CONFIG_ENV_VAR = "EDGE_AGENT_CONFIG"


def _default_data_dir() -> Path:
    """Per-user state folder, so a fresh machine needs no root and no setup."""
    state_home = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local/state"
    return Path(state_home) / "edge-agent"


def _http_url(value: str) -> str:
    """``value`` unchanged, or ``ValueError`` unless it is an HTTP(S) URL."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)


class StorageSettings(_Section):
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_file: str = "edge-agent.sqlite3"
    busy_timeout_ms: int = Field(default=5000, ge=0)

    @property
    def database_path(self) -> Path:
        return self.data_dir / self.database_file


class RecognizerSettings(_Section):
    # "compreface" or "codeproject" (CodeProject.AI / DeepStack face API).
    kind: Literal["compreface", "codeproject"] = "compreface"
    url: str = "http://127.0.0.1:8000"
    api_key: SecretStr = SecretStr("")
    timeout_s: float = Field(default=5.0, gt=0)
    det_prob_threshold: float = Field(default=0.8, ge=0, le=1)
    prediction_count: int = Field(default=2, ge=1, le=10)
    # Seconds to establish a connection, within timeout_s for the whole call.
    connect_timeout_s: float = Field(default=2.0, gt=0)
    # Calls in flight at once; more wait their turn.
    concurrency: int = Field(default=4, ge=1, le=64)
    # Retries of a call that failed for a transient reason (connection, 5xx),
    # with jittered exponential backoff from backoff_s.
    retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.2, gt=0)
    # Consecutive failures that open the circuit breaker, and how long it
    # stays open before one trial call is let through.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=15.0, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value).rstrip("/")


class ImagingSettings(_Section):
    decode_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # Refused from the header alone (decompression bombs): total pixels, and
    # the longer side.
    max_pixels: int = Field(default=40_000_000, ge=10_000)
    max_side: int = Field(default=16_384, ge=100)
    # The longer edge sent to the recognizer; larger frames are scaled down
    # (with reduced-size JPEG decoding where possible).
    max_edge: int = Field(default=640, ge=64)
    # JPEG quality when a normalized frame must be re-encoded.
    jpeg_quality: int = Field(default=90, ge=50, le=100)
    # Quality gates; a frame failing one never reaches the recognizer.
    # Mean grey level (0..255) bounds:
    min_brightness: float = Field(default=25.0, ge=0, le=255)
    max_brightness: float = Field(default=235.0, ge=0, le=255)
    # Variance of the Laplacian below which a frame is too blurry (0: off).
    min_sharpness: float = Field(default=15.0, ge=0)
    # Shorter side, in pixels, below which a frame is too small.
    min_side: int = Field(default=64, ge=1)


class SpoolSettings(_Section):
    # Accepted frames wait here (files + a queue table) until decided. Default:
    # <data_dir>/spool.
    folder: Path | None = None
    max_frames: int = Field(default=2000, ge=1)
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    # Workers taking frames from the queue to decode, recognize and decide.
    workers: int = Field(default=4, ge=1, le=64)
    # Frames arriving within this many milliseconds share one fsynced commit.
    group_commit_ms: float = Field(default=4.0, ge=0, le=100)
    # Decisions are committed in batches of up to this many frames.
    decision_batch: int = Field(default=32, ge=1, le=1000)
    # An identical frame (same bytes) from the same camera within this window
    # is answered as a duplicate without a second recognition.
    duplicate_frame_window_s: float = Field(default=10.0, ge=0)
    # A capture time further than this from the appliance clock is flagged.
    clock_skew_tolerance_s: float = Field(default=120.0, gt=0)
    # New frames are refused (507) while less than this many bytes are free on
    # the spool's disk. Delivered sync records are pruned as they are
    # acknowledged, and the self-check raises an anomaly well before this.
    min_free_disk_bytes: int = Field(default=256 * 1024 * 1024, ge=0)


class CameraRules(_Section):
    """One camera's replacements for the attendance rules; unset ones inherit."""

    match_threshold: float | None = Field(default=None, ge=0, le=1)
    unknown_threshold: float | None = Field(default=None, ge=0, le=1)
    margin: float | None = Field(default=None, ge=0, le=1)
    confirm_frames: int | None = Field(default=None, ge=1, le=100)
    confirm_window_frames: int | None = Field(default=None, ge=1, le=100)
    confirm_window_s: float | None = Field(default=None, gt=0, le=3600)


class AttendanceSettings(_Section):
    match_threshold: float = Field(default=0.85, ge=0, le=1)
    unknown_threshold: float = Field(default=0.70, ge=0, le=1)
    margin: float = Field(default=0.05, ge=0, le=1)
    duplicate_window_s: float = Field(default=300.0, ge=0)
    confirm_frames: int = Field(default=1, ge=1, le=100)
    confirm_window_frames: int = Field(default=1, ge=1, le=100)
    confirm_window_s: float = Field(default=10.0, gt=0, le=3600)
    timezone: str = "UTC"
    cameras: dict[str, CameraRules] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _check_rules(self) -> AttendanceSettings:
        """Each camera's rules, once merged with the defaults, must make sense."""
        for camera_id, rules in {"": CameraRules(), **self.cameras}.items():
            where = f"cameras.{camera_id}." if camera_id else ""
            match = _pick(rules.match_threshold, self.match_threshold)
            unknown = _pick(rules.unknown_threshold, self.unknown_threshold)
            if unknown > match:
                raise ValueError(
                    f"{where}unknown_threshold {unknown} is above "
                    f"{where}match_threshold {match}"
                )
            frames = _pick(rules.confirm_frames, self.confirm_frames)
            window = _pick(rules.confirm_window_frames, self.confirm_window_frames)
            if frames > window:
                raise ValueError(
                    f"{where}confirm_frames {frames} is more than "
                    f"{where}confirm_window_frames {window}"
                )
        return self


def _pick(override: float | None, default: float) -> float:
    """A camera's own value when it has one, else the site-wide default."""
    return default if override is None else override


class AuthSettings(_Section):
    # HS256 signs with a shared secret from signing_key_file (created, 0600, on
    # first start when missing); EdDSA and RS256 sign with private_key_file and
    # verify with public_key_file (PEM).
    algorithm: Literal["HS256", "EdDSA", "RS256"] = "HS256"
    signing_key_file: Path | None = None
    private_key_file: Path | None = None
    public_key_file: Path | None = None
    issuer: str = "edge-agent"
    audience: str = "edge-agent-api"
    access_token_ttl_s: int = Field(default=900, ge=30)
    max_token_ttl_s: int = Field(default=90 * 86400, ge=60)
    leeway_s: int = Field(default=30, ge=0, le=300)
    key_rotation_grace_s: int = Field(default=86400, ge=0)
    open_metrics: bool = False
    # Serve the status page (GET /) without credentials: it shows counts and
    # device states, never a person, so the LAN may read it on a wall screen.
    open_status_page: bool = True


class RateSpec(_Section):
    per_s: float = Field(gt=0)
    burst: int = Field(ge=1)


class RateLimitSettings(_Section):
    camera: RateSpec = RateSpec(per_s=10.0, burst=20)
    user: RateSpec = RateSpec(per_s=5.0, burst=30)
    # Per camera id, replacing ``camera`` for that camera.
    camera_overrides: dict[str, RateSpec] = Field(default_factory=dict)
    # Failed logins and bad keys allowed per source address, refilled over a
    # minute; past them every credential from that address is refused.
    failed_auth_per_minute: int = Field(default=10, ge=1)
    # Buckets kept in memory at most; the least recently used go first.
    max_buckets: int = Field(default=10_000, ge=100)


class EnrollmentSettings(_Section):
    # Shorter side, in pixels of the normalized image (longer edge at most
    # imaging.max_edge), under which an enrollment face is refused.
    min_face_px: int = Field(default=60, ge=1)


class MonitorSettings(_Section):
    """Camera liveness, active probes and the appliance's self-checks."""

    # How often each camera's liveness is judged, in seconds.
    liveness_interval_s: float = Field(default=5.0, gt=0, le=300)
    # Seconds between frames expected of a camera registered without its own
    # interval (0: such cameras are not watched).
    default_expected_interval_s: float = Field(default=10.0, ge=0)
    # A camera is stale after one missed interval and offline after this many.
    offline_after_missed: int = Field(default=3, ge=1, le=100)
    # Active probes of cameras that have a probe URL.
    probe_interval_s: float = Field(default=30.0, gt=0)
    probe_timeout_s: float = Field(default=5.0, gt=0, le=60)
    max_concurrent_probes: int = Field(default=4, ge=1, le=64)
    # The appliance's own checks.
    self_check_interval_s: float = Field(default=30.0, gt=0)
    # Free space under the data folder below which disk is an anomaly.
    min_free_disk_percent: float = Field(default=5.0, ge=0, le=100)
    # Spool use (frames or bytes, as a share of its limit) that is an anomaly.
    spool_backlog_ratio: float = Field(default=0.8, gt=0, le=1)
    # Wall clock moving this many seconds away from the monotonic clock
    # between two checks is a clock jump.
    clock_jump_s: float = Field(default=60.0, gt=0)
    # Oldest unsent sync record, in seconds, that is an anomaly.
    sync_lag_s: float = Field(default=3600.0, gt=0)
    # Consecutive failing checks before an anomaly is raised, and passing ones
    # before it is cleared, so a value hovering at a threshold does not flap.
    raise_after: int = Field(default=2, ge=1, le=100)
    clear_after: int = Field(default=2, ge=1, le=100)


class WebhookSettings(_Section):
    """One webhook receiving events as signed JSON POSTs."""

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    url: str
    # Signs each body with HMAC-SHA256; share it with the receiver.
    secret: SecretStr
    # Event types delivered (for example "camera.offline"); empty: all.
    event_types: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)


class MqttSettings(_Section):
    """The MQTT broker events are published to."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr = SecretStr("")
    tls: bool = False
    # Topics are <topic_prefix>/<site_id>/...
    topic_prefix: str = Field(default="edge-agent", min_length=1)
    # Default: edge-agent-<site_id>.
    client_id: str | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    # Seconds to wait for the broker's acknowledgement of one publish (QoS 1),
    # and for a connection when a publish finds none.
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Delay before reconnecting after a broker loss, doubling up to the cap.
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    # Event types published; empty: all.
    event_types: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_reconnect(self) -> MqttSettings:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s is above reconnect_max_s")
        return self


class EventSettings(_Section):
    """Delivery of the event outbox to its sinks."""

    # Failed deliveries of one event before it becomes a dead letter.
    max_attempts: int = Field(default=10, ge=1, le=1000)
    # Jittered exponential backoff between attempts, in seconds.
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_cap_s: float = Field(default=300.0, gt=0)
    # Events read from the outbox at a time.
    batch: int = Field(default=100, ge=1, le=10_000)
    # How often sinks look for events written by other processes (the CLI).
    poll_interval_s: float = Field(default=5.0, gt=0, le=300)
    # At most one face.unknown event per camera in this many seconds (each
    # says how many unknown faces it stands for); 0: one per unknown face.
    unknown_face_interval_s: float = Field(default=10.0, ge=0)
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)

    @model_validator(mode="after")
    def _check_names(self) -> EventSettings:
        names = [hook.name for hook in self.webhooks]
        if len(names) != len(set(names)):
            raise ValueError("two webhooks have the same name")
        if self.backoff_base_s > self.backoff_cap_s:
            raise ValueError("backoff_base_s is above backoff_cap_s")
        return self


class SyncSettings(_Section):
    """Shipping attendance, audit and events to the central server."""

    # Off until a central server URL is set.
    url: str | None = None
    # The site token `cloud-sync sites add` printed; or a file holding it.
    site_token: SecretStr = SecretStr("")
    site_token_file: Path | None = None
    # Recognition decisions are shipped too when set (they are many).
    send_decisions: bool = False
    batch_records: int = Field(default=500, ge=1, le=10_000)
    batch_bytes: int = Field(default=256 * 1024, ge=4096)
    timeout_s: float = Field(default=30.0, gt=0)
    # Full-jitter exponential backoff while the central server is away.
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_cap_s: float = Field(default=300.0, gt=0)
    # Pause between rounds when everything is sent.
    idle_interval_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value).rstrip("/")

    @model_validator(mode="after")
    def _check_backoff(self) -> SyncSettings:
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s is below backoff_base_s")
        return self

    @property
    def has_site_token(self) -> bool:
        """Whether a token is given, inline or as a file (read only when used)."""
        return (
            bool(self.site_token.get_secret_value()) or self.site_token_file is not None
        )


def site_token(settings: SyncSettings) -> str:
    """The site token, from the settings or the file they name."""
    token = settings.site_token.get_secret_value()
    if token or settings.site_token_file is None:
        return token
    try:
        return settings.site_token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"sync.site_token_file {settings.site_token_file}: {exc.strerror}"
        ) from exc


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "text"] = "auto"


class Settings(BaseSettings):
    """Everything the appliance can be told; every field has a working default."""

    model_config = SettingsConfigDict(
        env_prefix="EDGE_AGENT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    site_id: str = Field(default="site-1", min_length=1, max_length=64)
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    recognizer: RecognizerSettings = Field(default_factory=RecognizerSettings)
    imaging: ImagingSettings = Field(default_factory=ImagingSettings)
    spool: SpoolSettings = Field(default_factory=SpoolSettings)
    attendance: AttendanceSettings = Field(default_factory=AttendanceSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    enrollment: EnrollmentSettings = Field(default_factory=EnrollmentSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        file_source = _FileSource(settings_cls, _file_values.get() or {})
        return (init_settings, env_settings, file_source)


# The values of the file being loaded, visible to the source above only while
# load_settings() builds the object.
_file_values: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "file_values", default=None
)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the option."""


class _FileSource(PydanticBaseSettingsSource):
    """Values read from the TOML file, below the environment in precedence."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]):
        super().__init__(settings_cls)
        self._values = values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


def load_settings(
    config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build the settings; raise :class:`ConfigError` on any bad value."""
    token = _file_values.set(_read_config_file(config_file))
    try:
        settings = apply_credentials(Settings(**(overrides or {})))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    finally:
        _file_values.reset(token)
    _check_complete(settings)
    return settings


def _check_complete(settings: Settings) -> None:
    """What no single option can judge: options that need one another."""
    sync = settings.sync
    if sync.url is not None and not sync.has_site_token:
        raise ConfigError(
            "invalid setting sync.url: it needs sync.site_token, "
            "sync.site_token_file or the site-token credential"
        )


def _read_config_file(config_file: Path | None) -> dict[str, Any]:
    path = config_file or _env_config_path()
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _env_config_path() -> Path | None:
    value = os.environ.get(CONFIG_ENV_VAR)
    return Path(value) if value else None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        option = ".".join(str(part) for part in error["loc"]) or "settings"
        problems.append(f"{option}: {error['msg']}")
    return "invalid setting " + "; ".join(problems)
