"""Recognition client factory: the configured adapter, wrapped for resilience."""

from __future__ import annotations

from edge_agent.clients.recognition.base import Recognizer
from edge_agent.clients.recognition.codeproject import CodeProjectClient
from edge_agent.clients.recognition.compreface import CompreFaceClient
from edge_agent.clients.recognition.resilient import ResilientRecognizer
from edge_agent.config import RecognizerSettings


def build_recognizer(settings: RecognizerSettings) -> ResilientRecognizer:
    """The adapter ``settings.kind`` names, behind retries and a circuit breaker.

    Nothing is opened here; the caller owns ``open()`` and ``close()``.
    """
    return ResilientRecognizer(
        _adapter(settings),
        concurrency=settings.concurrency,
        retries=settings.retries,
        backoff_s=settings.backoff_s,
        breaker_failures=settings.breaker_failures,
        breaker_open_s=settings.breaker_open_s,
    )


def _adapter(settings: RecognizerSettings) -> Recognizer:
    api_key = settings.api_key.get_secret_value()
    if settings.kind == "codeproject":
        return CodeProjectClient(
            settings.url,
            api_key,
            timeout_s=settings.timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            min_confidence=settings.det_prob_threshold,
            pool_size=settings.concurrency,
        )
    return CompreFaceClient(
        settings.url,
        api_key,
        timeout_s=settings.timeout_s,
        connect_timeout_s=settings.connect_timeout_s,
        det_prob_threshold=settings.det_prob_threshold,
        prediction_count=settings.prediction_count,
        pool_size=settings.concurrency,
    )
