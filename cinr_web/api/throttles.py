"""Rate limits per user: the model API (scripts call it in a loop), dataset uploads and the dashboard's "Try it"
(each stores or computes much more than its request holds)."""

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle


class _SettingsRateThrottle(UserRateThrottle):
    """Per user (per IP when anonymous) rate from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope].

    The rate is read on every request rather than once at import (DRF's default), so a changed setting (env
    CINR_*_THROTTLE, or override_settings in tests) takes effect. Counts live in Django's cache (Redis), shared by
    all web processes.
    """

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class EmbedThrottle(_SettingsRateThrottle):
    """POST /api/encoders/<id>/embed: CINR_EMBED_THROTTLE."""

    scope = "embed"


class UploadThrottle(_SettingsRateThrottle):
    """POST /api/datasets/upload/: CINR_UPLOAD_THROTTLE."""

    scope = "upload"


class TryThrottle(_SettingsRateThrottle):
    """The dashboard's "Try it" (fits an uploaded image, then embeds it): CINR_TRY_THROTTLE."""

    scope = "try"
