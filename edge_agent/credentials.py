"""Secrets handed over by systemd credentials (``LoadCredential=``), for settings.

systemd copies each credential named in the unit into a private, read-only
folder that only the service can read, and names that folder in
``$CREDENTIALS_DIRECTORY`` (systemd.exec(5), "Credentials"). A secret passed
this way never appears in the unit, the environment or the config file.

A credential fills its setting only while that setting is empty: a value
given in the file, the environment or a flag always wins.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    # Only for annotations: config.py may import this module while it loads.
    from edge_agent.config import Settings

logger = logging.getLogger(__name__)

CREDENTIALS_ENV_VAR = "CREDENTIALS_DIRECTORY"
RECOGNIZER_API_KEY = "recognizer-api-key"
SITE_TOKEN = "site-token"


def apply_credentials(settings: Settings, directory: Path | None = None) -> Settings:
    """``settings`` with empty secrets filled from the credentials folder.

    ``directory`` defaults to ``$CREDENTIALS_DIRECTORY``; without one, or
    without a credential for a secret, that secret stays as it was.
    """
    folder = directory or _credentials_directory()
    if folder is None:
        return settings

    updates: dict[str, object] = {}
    api_key = read_credential(folder, RECOGNIZER_API_KEY)
    if api_key and not settings.recognizer.api_key.get_secret_value():
        updates["recognizer"] = settings.recognizer.model_copy(
            update={"api_key": SecretStr(api_key)}
        )
    token = read_credential(folder, SITE_TOKEN)
    if token and not settings.sync.has_site_token:
        updates["sync"] = settings.sync.model_copy(
            update={"site_token": SecretStr(token)}
        )
    return settings.model_copy(update=updates) if updates else settings


def read_credential(folder: Path, name: str) -> str | None:
    """The credential's text without surrounding whitespace; None when absent."""
    try:
        text = (folder / name).read_text("utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        # The value is never logged, only which credential could not be read.
        logger.warning("Credential %s in %s unreadable: %s", name, folder, exc)
        return None
    return text or None


def _credentials_directory() -> Path | None:
    value = os.environ.get(CREDENTIALS_ENV_VAR)
    return Path(value) if value else None
