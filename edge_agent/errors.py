"""Domain errors shared by every layer; the gateway turns them into problem+json.

The tree::

    EdgeError                      500  something the appliance did not expect
     +-- InvalidInput              422  the request is well formed but wrong
     |    +-- UnsupportedImage     415  the bytes are not an image we accept
     |    +-- UndecodableImage     422  an image type we accept, but it will not decode
     |    +-- TruncatedImage       422  the file ends before its image does
     |    +-- ImageTooLarge        422  the header claims more pixels than allowed
     |    +-- PoorQuality          422  decodes, but too dark, bright, blurry or small
     |    +-- PayloadTooLarge      413  the body is larger than configured
     +-- NotFound                  404  the named object does not exist
     +-- Conflict                  409  the object exists or its state forbids the act
     +-- Refused                   422  the act is understood but refused by a rule
     |    +-- NoFaceFound          422  enrollment image without a usable face
     +-- Unavailable               503  a dependency is down; retrying later can work
     |    +-- RecognizerUnavailable
     +-- Unauthenticated           401  no credentials, or bad ones
     +-- Forbidden                 403  authenticated, but not allowed this
     +-- RateLimited               429  too many requests; retry after a delay

Each class carries a stable ``slug`` (the last part of the problem ``type``), an
HTTP status and a short title. Services raise these; adapters translate their
library's errors into them with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class EdgeError(Exception):
    """Base of every error the appliance raises on purpose."""

    slug: ClassVar[str] = "internal-error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(
        self, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


class InvalidInput(EdgeError):
    slug = "invalid-input"
    status = 422
    title = "Invalid input"


class UnsupportedImage(InvalidInput):
    slug = "unsupported-image"
    status = 415
    title = "Unsupported image format"


class UndecodableImage(InvalidInput):
    slug = "undecodable-image"
    status = 422
    title = "Image does not decode"


class TruncatedImage(InvalidInput):
    slug = "truncated-image"
    status = 422
    title = "Image is truncated"


class ImageTooLarge(InvalidInput):
    """Refused from the header alone, before any pixel is decoded."""

    slug = "image-too-large"
    status = 422
    title = "Image dimensions too large"


class PoorQuality(InvalidInput):
    """A quality gate refused the frame; ``reason`` names the gate."""

    slug = "poor-quality"
    status = 422
    title = "Image quality too poor"

    def __init__(self, detail: str, *, reason: str, **extensions: Any) -> None:
        super().__init__(detail, reason=reason, **extensions)
        self.reason = reason


class PayloadTooLarge(InvalidInput):
    slug = "payload-too-large"
    status = 413
    title = "Payload too large"


class NotFound(EdgeError):
    slug = "not-found"
    status = 404
    title = "Not found"


class Conflict(EdgeError):
    slug = "conflict"
    status = 409
    title = "Conflict"


class Refused(EdgeError):
    slug = "refused"
    status = 422
    title = "Refused"


class NoFaceFound(Refused):
    slug = "no-face-found"
    status = 422
    title = "No face found"


class Unavailable(EdgeError):
    slug = "unavailable"
    status = 503
    title = "Service unavailable"
    # Seconds a client should wait before trying again (RFC 9110, 10.2.3).
    retry_after_s: ClassVar[int] = 5

    def __init__(
        self, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any
    ) -> None:
        headers = {"Retry-After": str(self.retry_after_s), **(headers or {})}
        super().__init__(detail, headers=headers, **extensions)


class RecognizerUnavailable(Unavailable):
    slug = "recognizer-unavailable"
    title = "Face recognizer unavailable"


class Unauthenticated(EdgeError):
    """No credentials, or credentials that do not check out (RFC 9110, 15.5.2).

    The response must say how to authenticate (``WWW-Authenticate``, RFC 9110,
    11.6.1); the header names the Bearer scheme of RFC 6750.
    """

    slug = "unauthenticated"
    status = 401
    title = "Authentication required"

    def __init__(self, detail: str, *, error: str = "invalid_token") -> None:
        challenge = f'Bearer realm="edge-agent", error="{error}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(EdgeError):
    slug = "forbidden"
    status = 403
    title = "Forbidden"


class RateLimited(EdgeError):
    slug = "rate-limited"
    status = 429
    title = "Too many requests"

    def __init__(
        self, detail: str, *, retry_after_s: int, headers: dict[str, str] | None = None
    ) -> None:
        headers = {"Retry-After": str(retry_after_s), **(headers or {})}
        super().__init__(detail, headers=headers, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s
