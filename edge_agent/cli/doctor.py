"""Site admin CLI: ``edge-agent doctor`` checks that this site can work.

Each check answers pass, warn, fail or skip (not configured) with a detail
saying what was seen. Checks of the outside (recognizer, broker, central
server) run at once, each bounded by ``--timeout``. The exit code is 1 when
any check failed, so an installer's script or a monitoring probe can rely on
it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Annotated, Literal

import aiohttp
import aiomqtt
import typer
from rich.table import Table

from edge_agent.cli.common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    console,
    overrides_from,
    print_json,
)
from edge_agent.clients.storage.backup import check_database
from edge_agent.config import ConfigError, Settings, load_settings

Status = Literal["pass", "warn", "fail", "skip"]

# A clock this far from the central server's is suspicious, and this far off
# makes token lifetimes and attendance times wrong.
CLOCK_WARN_S = 2.0
CLOCK_FAIL_S = 60.0
# No appliance was built before this year: an earlier clock was never set.
MIN_YEAR = 2024
_STYLE = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "dim"}


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: Status
    detail: str


@dataclass(frozen=True, slots=True)
class _HttpAnswer:
    status: int
    elapsed_s: float
    # The server's clock at the middle of the exchange, from its Date header.
    server_skew_s: float | None


def doctor(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    json: JsonOption = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds each network check may take.")
    ] = 3.0,
) -> None:
    """Check settings, database, disk, spool, recognizer, broker, sync and clock."""
    results = asyncio.run(_run_checks(config, data_dir, timeout))
    failed = any(r.status == "fail" for r in results)
    if json:
        print_json({"ok": not failed, "checks": [asdict(r) for r in results]})
    else:
        console.print(_table(results))
    if failed:
        raise typer.Exit(1)


async def _run_checks(
    config: Path | None, data_dir: Path | None, timeout_s: float
) -> list[CheckResult]:
    try:
        settings = load_settings(config, overrides_from(data_dir))
    except ConfigError as exc:
        return [CheckResult("config", "fail", str(exc))]

    central = asyncio.create_task(_probe_central(settings, timeout_s))
    outside = await asyncio.gather(
        _check_recognizer(settings, timeout_s), _check_mqtt(settings, timeout_s)
    )
    central_result, answer = await central
    local = await asyncio.to_thread(_local_checks, settings)
    return [
        CheckResult("config", "pass", _config_source(config)),
        *local,
        *outside,
        central_result,
        _check_clock(answer),
    ]


def _config_source(config: Path | None) -> str:
    path = config or os.environ.get("EDGE_AGENT_CONFIG")
    return f"{path} is valid" if path else "defaults and environment are valid"


def _local_checks(settings: Settings) -> list[CheckResult]:
    """The checks of this machine; they block, so they run on a thread."""
    return [_check_database(settings), _check_disk(settings), _check_spool(settings)]


def _check_database(settings: Settings) -> CheckResult:
    path = settings.storage.database_path
    if not path.is_file():
        return CheckResult("database", "fail", f"no database at {path}; run init")
    try:
        check = check_database(path, quick=True)
    # Whatever the file does wrong is this row's finding, never a crash of
    # the doctor.
    except Exception as exc:
        return CheckResult("database", "fail", f"{path}: {exc}")
    if not check.ok:
        return CheckResult("database", "fail", "; ".join(check.problems()))
    latest = max(check.applied, default=0)
    return CheckResult(
        "database", "pass", f"quick_check ok, migrations current ({latest:04d})"
    )


def _check_disk(settings: Settings) -> CheckResult:
    folder = _existing_parent(settings.storage.data_dir)
    usage = shutil.disk_usage(folder)
    percent = 100 * usage.free / usage.total if usage.total else 0.0
    detail = f"{usage.free / 2**30:.1f} GiB free ({percent:.0f}%) under {folder}"
    floor = settings.monitor.min_free_disk_percent
    if percent < floor:
        return CheckResult("disk", "fail", f"{detail}, below {floor:g}%")
    if percent < 2 * floor:
        return CheckResult("disk", "warn", f"{detail}, near {floor:g}%")
    return CheckResult("disk", "pass", detail)


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_spool(settings: Settings) -> CheckResult:
    folder = settings.spool.folder or settings.storage.data_dir / "spool"
    if not folder.exists():
        parent = _existing_parent(folder)
        if os.access(parent, os.W_OK):
            return CheckResult("spool", "warn", f"{folder} missing; serve creates it")
        return CheckResult("spool", "fail", f"{folder} missing, {parent} read-only")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as exc:
        return CheckResult("spool", "fail", f"{folder} is not writable: {exc}")
    return CheckResult("spool", "pass", f"{folder} is writable")


async def _check_recognizer(settings: Settings, timeout_s: float) -> CheckResult:
    url = settings.recognizer.url
    try:
        answer = await _http_probe(url, timeout_s)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return CheckResult("recognizer", "fail", f"{url}: {_reason(exc)}")
    return CheckResult("recognizer", "pass", _answered(url, answer))


async def _probe_central(
    settings: Settings, timeout_s: float
) -> tuple[CheckResult, _HttpAnswer | None]:
    url = settings.sync.url
    if url is None:
        return CheckResult("central server", "skip", "sync.url is not set"), None
    try:
        answer = await _http_probe(url, timeout_s)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return CheckResult("central server", "fail", f"{url}: {_reason(exc)}"), None
    return CheckResult("central server", "pass", _answered(url, answer)), answer


async def _http_probe(url: str, timeout_s: float) -> _HttpAnswer:
    """GET ``url``: any HTTP answer at all shows the service is there."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.time()
        async with session.get(url, allow_redirects=False) as response:
            ended = time.time()
            date = response.headers.get("Date")
    skew = None
    if date:
        # RFC 9110, 6.6.1: the origin's clock when it made the answer.
        server = parsedate_to_datetime(date).timestamp()
        skew = server - (started + ended) / 2
    return _HttpAnswer(response.status, ended - started, skew)


def _answered(url: str, answer: _HttpAnswer) -> str:
    return f"HTTP {answer.status} from {url} in {answer.elapsed_s * 1000:.0f} ms"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    return str(exc) or type(exc).__name__


async def _check_mqtt(settings: Settings, timeout_s: float) -> CheckResult:
    mqtt = settings.events.mqtt
    if not mqtt.enabled:
        return CheckResult("mqtt broker", "skip", "events.mqtt.enabled is false")
    where = f"{mqtt.host}:{mqtt.port}"
    client = aiomqtt.Client(
        mqtt.host,
        mqtt.port,
        username=mqtt.username,
        password=mqtt.password.get_secret_value() or None,
        # Never the daemon's own client id: the broker would drop its session.
        identifier=f"edge-agent-doctor-{os.getpid()}",
        tls_context=ssl.create_default_context() if mqtt.tls else None,
        timeout=timeout_s,
    )
    try:
        async with asyncio.timeout(timeout_s), client:
            pass
    except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
        return CheckResult("mqtt broker", "fail", f"{where}: {_reason(exc)}")
    return CheckResult("mqtt broker", "pass", f"connected to {where}")


def _check_clock(central: _HttpAnswer | None) -> CheckResult:
    now = datetime.now(UTC)
    if now.year < MIN_YEAR:
        return CheckResult("clock", "fail", f"{now:%Y-%m-%d %H:%M} UTC was never set")
    if central is None or central.server_skew_s is None:
        return CheckResult("clock", "pass", f"{now:%Y-%m-%d %H:%M:%S} UTC")
    skew = central.server_skew_s
    detail = (
        f"{abs(skew):.1f} s {'behind' if skew > 0 else 'ahead of'} the central server"
    )
    if abs(skew) > CLOCK_FAIL_S:
        return CheckResult("clock", "fail", detail)
    if abs(skew) > CLOCK_WARN_S:
        return CheckResult("clock", "warn", detail)
    return CheckResult("clock", "pass", detail)


def _table(results: list[CheckResult]) -> Table:
    table = Table("check", "status", "detail", title="edge-agent doctor")
    for result in results:
        style = _STYLE[result.status]
        table.add_row(result.name, f"[{style}]{result.status}[/{style}]", result.detail)
    return table
