"""Content negotiation: ``?format=`` wins over ``Accept`` (DRF's ``URL_FORMAT_OVERRIDE``),
``Accept`` is read with its quality values (DRF orders by specificity alone), and a request that
no renderer satisfies is a 406 naming the formats offered (DRF answers an unknown ``format``
with a 404, and a bare "Could not satisfy the request Accept header")."""

from __future__ import annotations

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.utils.mediatypes import media_type_matches


def _offered(renderers) -> str:
    formats = {}
    for renderer in renderers:
        formats.setdefault(renderer.format, renderer.media_type)
    listed = [f"{media_type} (format={name})" for name, media_type in formats.items()]
    choices = listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} or {listed[-1]}"
    return f"this answer comes as {choices}."


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        wanted = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if wanted:
            for renderer in renderers:
                if renderer.format == wanted:
                    return renderer, renderer.media_type
            raise NotAcceptable(f"Unknown format '{wanted[:64]}': {_offered(renderers)}")
        wanted, refused = _by_quality(request.META.get("HTTP_ACCEPT") or "*/*")
        for media_type in wanted:
            for renderer in renderers:
                if media_type_matches(renderer.media_type, media_type) and not any(
                    media_type_matches(renderer.media_type, other) for other in refused
                ):
                    return renderer, renderer.media_type
        raise NotAcceptable(
            f"Nothing the Accept header asks for is offered: {_offered(renderers)}"
        )


def _by_quality(accept: str) -> tuple[list[str], list[str]]:
    """The media types of an Accept header, most wanted first: by quality (``q``), then, as
    RFC 9110 orders them, the more specific first (``text/csv`` before ``text/*``); and those
    of quality 0, which mean "not this"."""
    ranked, refused = [], []
    for position, item in enumerate(accept.split(",")):
        media_type, _, parameters = item.partition(";")
        media_type = media_type.strip()
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not media_type:
            continue
        if quality <= 0:
            refused.append(media_type)
        else:
            specificity = 2 - media_type.count("*")
            ranked.append((-quality, -specificity, position, media_type))
    return [media_type for *_, media_type in sorted(ranked)], refused
