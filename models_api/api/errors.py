"""The errors services raise: plain exceptions that know nothing of HTTP.

Services, commands and the admin raise and catch these; only
:mod:`models_api.api.exception_handler` turns them into answers (400, 409, 413, 503), so a
command such as ``import_records`` never has to catch an HTTP exception.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

DATABASE_UNAVAILABLE = "The database is unreachable; please try again shortly."


class DomainError(Exception):
    """Base of the service errors; ``detail`` is one human sentence."""

    default_detail = "The request could not be carried out."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)


class InvalidInput(DomainError):
    """Input that breaks a rule: ``errors`` maps each field (or bulk line number) at fault to
    its messages; ``detail`` defaults to a sentence summing them up."""

    def __init__(self, errors: Mapping[str, Sequence[str]], detail: str | None = None) -> None:
        self.errors = {str(key): list(messages) for key, messages in errors.items()}
        super().__init__(detail or summarise(self.errors))

    def lines(self) -> list[str]:
        """The errors as ``field: message`` lines (for one bulk line's report)."""
        return [
            f"{field}: {message}"
            for field, messages in self.errors.items()
            for message in messages
        ]


class ReferenceMissing(InvalidInput):
    """A write names an experiment, season or site that does not exist."""


class Conflict(DomainError):
    """A write would duplicate an existing row; ``existing_id`` names that row."""

    default_detail = "This conflicts with an existing object."

    def __init__(
        self, detail: str | None = None, *, existing_id: uuid.UUID | str | None = None
    ) -> None:
        super().__init__(detail)
        self.existing_id = existing_id


class ReferenceDeleted(Conflict):
    """A row the write points at was deleted while it was written (a race with a curator);
    nothing was written, and a retry answers 400 naming the missing reference."""

    default_detail = (
        "An experiment, season, site or dataset named here was deleted while the records were "
        "written; nothing was written. Please try again."
    )


class TooLarge(DomainError):
    default_detail = "The request body is too large."


class Unavailable(DomainError):
    """A backing service (the database, the file storage) does not answer; retry later."""

    default_detail = "A backing service is unreachable; please try again shortly."


#: The key of messages that belong to no one field.
NON_FIELD = "non_field_errors"


def summarise(errors: Mapping[str, Sequence[str]]) -> str:
    """One human sentence for a set of field errors."""
    fields = [field for field in errors if field != NON_FIELD]
    if not fields:
        return next(iter(errors.get(NON_FIELD, ["Invalid input."])))
    if len(errors) == 1:
        return f"{fields[0]}: {errors[fields[0]][0]}"
    return f"Invalid input in {', '.join(sorted(errors))}."
