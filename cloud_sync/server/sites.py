"""Site service: register sites, issue and rotate their tokens, report status."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import TypeAdapter, ValidationError

from cloud_sync.protocol import SiteId, Stream
from cloud_sync.server.errors import Conflict, InvalidRequest, NotFound
from cloud_sync.server.store.model import Site, SiteExists, Store, StreamHead
from cloud_sync.server.tokens import new_token, token_hash

logger = logging.getLogger(__name__)

_SITE_ID: TypeAdapter[str] = TypeAdapter(SiteId)


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """A site with the state of each of its streams."""

    site: Site
    heads: dict[Stream, StreamHead]

    @property
    def chain(self) -> StreamHead:
        return self.heads.get(Stream.AUDIT, StreamHead(self.site.site_id, Stream.AUDIT))


class SiteService:
    """Sites and their tokens.

    A broken audit chain flag cannot be cleared here yet; only removing the
    site (and everything it sent) resets it.
    """

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    async def add(self, site_id: str, name: str | None = None) -> tuple[Site, str]:
        """Register ``site_id``; return it with its token, which is shown once."""
        _check_site_id(site_id)
        token = new_token()
        try:
            site = await self._store.add_site(
                site_id, name or site_id, token_hash(token), self._clock()
            )
        except SiteExists as exc:
            raise Conflict(f"site {site_id} is already registered") from exc
        logger.info("Site %s registered", site_id)
        return site, token

    async def rotate_token(self, site_id: str) -> str:
        """Give the site a new token; the old one stops working at once."""
        token = new_token()
        if not await self._store.set_token(site_id, token_hash(token), self._clock()):
            raise NotFound(f"no site {site_id}")
        logger.info("Token of site %s rotated", site_id)
        return token

    async def remove(self, site_id: str) -> None:
        """Forget the site, its token and everything it sent."""
        if not await self._store.remove_site(site_id):
            raise NotFound(f"no site {site_id}")
        logger.info("Site %s removed", site_id)

    async def list_sites(self) -> list[Site]:
        return await self._store.list_sites()

    async def authenticate(self, token: str) -> str | None:
        """The site whose token this is, or ``None``."""
        return await self._store.site_for_token(token_hash(token))

    async def status(self) -> list[SiteStatus]:
        sites = await self._store.list_sites()
        heads = await self._store.stream_heads()
        by_site: dict[str, dict[Stream, StreamHead]] = {}
        for head in heads:
            by_site.setdefault(head.site_id, {})[head.stream] = head
        return [SiteStatus(site, by_site.get(site.site_id, {})) for site in sites]


def _check_site_id(site_id: str) -> None:
    try:
        _SITE_ID.validate_python(site_id)
    except ValidationError as exc:
        raise InvalidRequest(
            "a site id is 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        ) from exc
