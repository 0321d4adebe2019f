"""Rate limits per user: the model API (scripts call it in a loop), dataset uploads and the dashboard's "Try it"
(each stores or computes much more than its request holds)."""

import logging

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

log = logging.getLogger(__name__)


class _SettingsRateThrottle(UserRateThrottle):
    """Per user (per IP when anonymous) rate from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope].

    The rate is read on every request rather than once at import (DRF's default), so a changed setting (env
    CINR_*_THROTTLE, or override_settings in tests) takes effect. Counts live in Django's cache (Redis), shared by
    all web processes.
    """

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        """Fails open: while Redis is unreachable the request is allowed (and a warning logged), so the model API
        keeps answering; a rate limit is worth less than the service it protects."""
        try:
            return super().allow_request(request, view)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("%s rate limit not checked, its Redis cache is unreachable (%s): request allowed",
                        self.scope, exc)
            return True


class EmbedThrottle(_SettingsRateThrottle):
    """POST /api/encoders/<id>/embed: CINR_EMBED_THROTTLE."""

    scope = "embed"


class UploadThrottle(_SettingsRateThrottle):
    """POST /api/datasets/upload/: CINR_UPLOAD_THROTTLE."""

    scope = "upload"


class TryThrottle(_SettingsRateThrottle):
    """The dashboard's "Try it" (fits an uploaded image, then embeds it): CINR_TRY_THROTTLE."""

    scope = "try"
