"""Event clients: the sinks the settings describe."""

from __future__ import annotations

from edge_agent.clients.events.base import Sink, type_filter
from edge_agent.clients.events.mqtt import MqttSink
from edge_agent.clients.events.webhook import WebhookSink
from edge_agent.clock import Clock
from edge_agent.config import EventSettings


def build_sinks(settings: EventSettings, site_id: str, clock: Clock) -> list[Sink]:
    """One sink per configured webhook, and the MQTT sink when it is enabled."""
    sinks: list[Sink] = [
        WebhookSink(hook, site_id, clock) for hook in settings.webhooks
    ]
    if settings.mqtt.enabled:
        sinks.append(MqttSink(settings.mqtt, site_id))
    return sinks


def sink_names(settings: EventSettings) -> list[str]:
    """The names :func:`build_sinks` gives its sinks, without building them."""
    return list(sink_event_types(settings))


def sink_event_types(settings: EventSettings) -> dict[str, frozenset[str] | None]:
    """Per sink name, the event types it takes; ``None``: every type."""
    types: dict[str, frozenset[str] | None] = {
        f"webhook:{hook.name}": type_filter(hook.event_types)
        for hook in settings.webhooks
    }
    if settings.mqtt.enabled:
        types["mqtt"] = type_filter(settings.mqtt.event_types)
    return types
