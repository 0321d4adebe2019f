"""The `id` path converter: a non-negative integer of at most 18 digits, so every id in a URL fits the database's
64-bit integers. Django's `int` takes any number of digits, and SQLite raises OverflowError (a 500) beyond 64 bits;
with `id` a longer number matches no route: 404."""

from django.urls import register_converter


class BoundedIdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))


register_converter(BoundedIdConverter, "id")  # once, at import; url modules import this module first
