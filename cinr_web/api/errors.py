"""Error bodies of the API, bounded: every message at most CINR_MAX_ERROR_CHARS characters, every list and object at
most MAX_ITEMS entries. An error says what is wrong briefly, however large the input that caused it."""

from __future__ import annotations

from rest_framework.exceptions import ErrorDetail
from rest_framework.views import exception_handler

from cinr_web.bounds import short_message

MAX_ITEMS = 20


def bound_errors(data: object) -> object:
    """A DRF error body with every string shortened and every list and object cut to MAX_ITEMS entries."""
    if isinstance(data, ErrorDetail):
        return ErrorDetail(short_message(str(data)), code=data.code)
    if isinstance(data, str):
        return short_message(data)
    if isinstance(data, list | tuple):
        items = [bound_errors(item) for item in data[:MAX_ITEMS]]
        if len(data) > MAX_ITEMS:
            items.append(f"... and {len(data) - MAX_ITEMS} more")
        return items
    if isinstance(data, dict):
        bounded = {short_message(str(key))[:100]: bound_errors(data[key]) for key in list(data)[:MAX_ITEMS]}
        if len(data) > MAX_ITEMS:
            bounded["..."] = f"and {len(data) - MAX_ITEMS} more fields"
        return bounded
    return data


def bounded_exception_handler(exc, context):
    """DRF's exception handler with its body bounded (REST_FRAMEWORK["EXCEPTION_HANDLER"])."""
    response = exception_handler(exc, context)
    if response is not None:
        response.data = bound_errors(response.data)
    return response
