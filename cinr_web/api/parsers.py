"""The API's JSON parser: the body is bounded in size and in nesting before the decoder sees it.

Python's JSON decoder recurses once per nested array or object, so a body of "[[[[..." raises RecursionError (a 500)
instead of a parse error; a body of many megabytes becomes a Python object graph many times its size.
"""

from __future__ import annotations

import io

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from inr import safejson


class BoundedJSONParser(JSONParser):
    """JSONParser refusing (400) bodies over CINR_MAX_JSON_BYTES or nested deeper than CINR_MAX_JSON_DEPTH."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.CINR_MAX_JSON_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise ParseError(f"JSON body over the limit of {limit} bytes")
        try:
            safejson.check_depth(body, settings.CINR_MAX_JSON_DEPTH, "the JSON body")
        except safejson.TooDeep as err:
            raise ParseError(str(err)) from None
        return super().parse(io.BytesIO(body), media_type, parser_context)
