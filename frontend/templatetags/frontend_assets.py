"""{% asset "cinr.js" %}: the URL of a dashboard asset with its content hash, so browsers may cache it for long."""

from django import template
from django.urls import reverse

from frontend.views.assets import asset_version

register = template.Library()


@register.simple_tag
def asset(name: str) -> str:
    return f"{reverse('frontend:asset', args=[name])}?v={asset_version(name)}"
