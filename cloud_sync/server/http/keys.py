"""Typed application keys: where the app keeps the services its handlers call."""

from __future__ import annotations

from aiohttp import web

from cloud_sync.server.ingest import IngestService
from cloud_sync.server.office import OfficeService
from cloud_sync.server.settings import Settings
from cloud_sync.server.sites import SiteService
from cloud_sync.server.store.model import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
INGEST = web.AppKey("ingest", IngestService)
SITES = web.AppKey("sites", SiteService)
OFFICE = web.AppKey("office", OfficeService)
