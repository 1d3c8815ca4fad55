"""Site admin CLI: ``edge-agent init`` prepares a new site in one command.

It writes the config file (the example's text, every option explained, with
the given values filled in), creates the data folder readable by its owner
only, opens the database (which applies the migrations and creates the token
signing key, exactly as the daemon would) and creates the first admin
account. Missing answers are asked for on a terminal; without one, a missing
flag is a one-line error.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import edge_agent
from edge_agent.cli.common import (
    ConfigOption,
    DataDirOption,
    console,
    fail,
    load_or_exit,
    local_actor,
    read_password,
    with_services,
)
from edge_agent.config import Settings
from edge_agent.errors import Conflict
from edge_agent.models import Role
from edge_agent.services import Services

EXAMPLE_NAME = "edge-agent.example.toml"
# A key line of the example, set or commented out: `key = ...` or `# key = ...`.
_KEY_LINE = r"^#?\s*{key}\s*=.*$"
_SECTION = re.compile(r"^\[([A-Za-z0-9_.]+)\]\s*$")


def _example_paths() -> list[Path]:
    """Where the example lives: a checkout, or where install.sh copies it."""
    checkout = Path(edge_agent.__file__).resolve().parent.parent / "config"
    return [
        checkout / EXAMPLE_NAME,
        Path(sys.prefix) / "share/edge-agent" / EXAMPLE_NAME,
    ]


def _default_config_path() -> Path:
    if os.geteuid() == 0:
        return Path("/etc/edge-agent/edge-agent.toml")
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home) / "edge-agent" / "edge-agent.toml"


def init(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    admin: Annotated[
        str | None, typer.Option(help="Name of the first admin account.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read its password from stdin.")
    ] = False,
    site_id: Annotated[
        str | None, typer.Option(help="This site's id at the central office.")
    ] = None,
    recognizer_url: Annotated[
        str | None, typer.Option(help="Base URL of the face recognition service.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing config file.")
    ] = False,
) -> None:
    """Write the config, create the data folder, database, keys and first admin."""
    path = config or _default_config_path()
    if path.exists() and not force:
        fail(f"{path} exists; pass --force to replace it")
    values = _answers(site_id, recognizer_url, data_dir)
    _validate(values)
    name = admin or _ask("Admin account name", "--admin NAME", default="admin")
    password = _password(password_stdin)

    _write_config(path, values)
    console.print(f"Wrote {path}")
    settings = load_or_exit(path)
    _make_data_dir(settings.storage.data_dir)
    created = with_services(settings, lambda s: _create_admin(s, name, password))
    _give_to_folder_owner(settings.storage.data_dir)
    console.print(f"Database ready at {settings.storage.database_path}")
    state = "Created" if created else "Kept the existing"
    console.print(f"{state} admin account {name}")


def _answers(
    site_id: str | None, recognizer_url: str | None, data_dir: Path | None
) -> dict[str, dict[str, Any]]:
    """Settings to write, by section ("" is the top level)."""
    defaults = Settings.model_fields
    site = site_id or _ask_optional("Site id", str(defaults["site_id"].default))
    url = recognizer_url or _ask_optional("Recognizer URL", "http://127.0.0.1:8000")
    values: dict[str, dict[str, Any]] = {"": {"site_id": site}}
    values["recognizer"] = {"url": url}
    if data_dir is not None:
        values["storage"] = {"data_dir": str(data_dir.resolve())}
    return values


def _validate(values: dict[str, dict[str, Any]]) -> None:
    overrides: dict[str, Any] = dict(values.get("", {}))
    overrides.update({k: v for k, v in values.items() if k})
    load_or_exit(None, overrides)


def _interactive() -> bool:
    return sys.stdin.isatty()


def _ask(question: str, flag: str, *, default: str | None = None) -> str:
    if not _interactive():
        fail(f"pass {flag} (stdin is not a terminal, so it cannot be asked)")
    answer: str = typer.prompt(question, default=default)
    return answer


def _ask_optional(question: str, default: str) -> str:
    """Asked on a terminal; otherwise the example's default stands."""
    if not _interactive():
        return default
    answer: str = typer.prompt(question, default=default)
    return answer


def _password(from_stdin: bool) -> str:
    if not from_stdin and not _interactive():
        fail("pass --password-stdin (stdin is not a terminal, so it cannot be asked)")
    return read_password(from_stdin, "Admin password")


def _write_config(path: Path, values: dict[str, dict[str, Any]]) -> None:
    """Write atomically, readable by owner and group (the daemon's group)."""
    text = _render(_example_text(), values)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    if path.exists():
        # A replaced file keeps its owner and group, so the daemon can still
        # read the config install.sh gave to its group.
        _copy_owner(path, partial)
    os.replace(partial, path)


def _copy_owner(source: Path, target: Path) -> None:
    stat = source.stat()
    if os.geteuid() == 0:
        os.chown(target, stat.st_uid, stat.st_gid)


def _example_text() -> str:
    for candidate in _example_paths():
        if candidate.is_file():
            return candidate.read_text("utf-8")
    # Without the example, a short file still works: every option has a default.
    return (
        "# edge-agent settings; every option and its default is explained in\n"
        f'# {EXAMPLE_NAME}.\n\nsite_id = ""\n\n[storage]\n\n[recognizer]\n'
    )


def _render(text: str, values: dict[str, dict[str, Any]]) -> str:
    """The example with each given key set in its section, comments kept."""
    lines = text.splitlines()
    for section, keys in values.items():
        for key, value in keys.items():
            _set_key(lines, section, key, value)
    return "\n".join(lines) + "\n"


def _set_key(lines: list[str], section: str, key: str, value: Any) -> None:
    # A TOML basic string is close enough to JSON's for paths and URLs.
    line = f"{key} = {json.dumps(value)}"
    pattern = re.compile(_KEY_LINE.format(key=re.escape(key)))
    header_at, current = None, ""
    for index, text in enumerate(lines):
        header = _SECTION.match(text)
        if header:
            current = header[1]
            header_at = index if current == section else header_at
        elif current == section and pattern.match(text):
            lines[index] = line
            return

    if not section:
        lines.insert(0, line)
    elif header_at is not None:
        lines.insert(header_at + 1, line)
    else:
        lines.extend(["", f"[{section}]", line])


def _make_data_dir(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Faces, keys and attendance live here: nobody else may list them.
    folder.chmod(0o700)


def _give_to_folder_owner(folder: Path) -> None:
    """Run as root on a folder the daemon's user owns, hand it what init made.

    Otherwise the database and key would belong to root, and the daemon,
    running as its own user, could not open them.
    """
    if os.geteuid() != 0 or folder.stat().st_uid == 0:
        return
    for path in folder.iterdir():
        if path.stat().st_uid == 0:
            _copy_owner(folder, path)


async def _create_admin(services: Services, name: str, password: str) -> bool:
    """Create the account; False when it exists already (init run again)."""
    try:
        await services.auth.create_account(name, password, Role.ADMIN, local_actor())
    except Conflict:
        return False
    return True
