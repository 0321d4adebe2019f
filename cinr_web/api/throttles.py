"""Rate limit of the model API (embeddings are the one endpoint scripts call in a loop)."""

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle


class EmbedThrottle(UserRateThrottle):
    """Per user (per IP when anonymous) rate from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["embed"].

    The rate is read on every request rather than once at import (DRF's default), so a changed setting
    (env CINR_EMBED_THROTTLE, or override_settings in tests) takes effect.
    """

    scope = "embed"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
