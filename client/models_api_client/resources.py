"""The catalogue: ``client.models``, ``client.experiments``, ``client.seasons``,
``client.sites``.

Lists: the contract answers 404 for an empty list; here an empty list is ``[]``. A 404 of a
top-level list (``all()``, ``search()``) can only mean "empty" (when it carries the
contract's JSON error body; any other 404, a wrong base URL say, is raised). A 404 of a
sub-list (``models.runs(id)`` and the like) may mean "empty" or "no such model": the client
then asks for the parent (``GET /id/{id}``), and raises that answer's :class:`NotFound` when
the parent does not exist, or gives ``[]`` when it does. (Should the parent not be readable
with this token, the 404's own sentence decides: "No <object> has the id ..." is an unknown
id.)
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from models_api_client._http import HTTP, error_from, is_json_error, json_of
from models_api_client.errors import Forbidden, NotFound
from models_api_client.objects import (
    Dataset,
    Experiment,
    Model,
    Run,
    Season,
    Site,
    _Object,
    format_datetime,
)

if TYPE_CHECKING:
    from models_api_client.client import Client

__all__ = ["Experiments", "Models", "Resource", "Seasons", "Sites"]

Id = uuid.UUID | str
T = TypeVar("T", bound=_Object)
U = TypeVar("U", bound=_Object)


def path_id(value: Id) -> str:
    """An id for a path (a UUID or its text; anything else answers 404 like an unknown id)."""
    return str(value).strip()


def query_value(value: Any) -> str:
    """A query parameter's text: JSON text for objects and lists, ISO text for times."""
    if isinstance(value, datetime.datetime):
        return format_datetime(value) if value.tzinfo else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def json_value(value: Any) -> Any:
    """A value for a JSON body: ids, times and dates as text, containers walked."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return format_datetime(value) if value.tzinfo else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def paging(limit: int | None, offset: int | None) -> dict[str, str]:
    params = {}
    if limit is not None:
        params["limit"] = str(limit)
    if offset is not None:
        params["offset"] = str(offset)
    return params


def is_empty_list(response: Any) -> bool:
    """Whether a list's answer may be the contract's 404 for an empty list: a 404 with the
    JSON error body, and not the service's 404 for a path it does not have ("Nothing is at
    ..."), which a wrong base URL or a server without the endpoint gives."""
    if response.status_code != 404 or not is_json_error(response):
        return False
    return not str(json_of(response)["detail"]).startswith("Nothing is at ")


class Resource(Generic[T]):
    """The operations every catalogue object type has: ``all``, ``search``, ``get``,
    ``create``, ``update``, ``delete``."""

    _path: str
    _type: type[T]

    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def _http(self) -> HTTP:
        return self._client._http

    # --- lists -----------------------------------------------------------------------------

    def _list(self, path: str, params: Mapping[str, str], kind: type[U]) -> list[U]:
        sent = self._http.send("GET", path, idempotent=True, params=dict(params))
        response = sent.response
        if is_empty_list(response):
            return []
        if not response.is_success:
            raise error_from(response)
        return [kind.from_json(item) for item in json_of(response)]

    def _sub_list(self, id: Id, name: str, kind: type[U], params: Mapping[str, str]) -> list[U]:
        """A list under one object (``/id/{id}/<name>``): ``[]`` when empty, NotFound for an
        unknown id (see the module docstring for how the two 404s are told apart)."""
        path = f"{self._path}/id/{path_id(id)}/{name}"
        sent = self._http.send("GET", path, idempotent=True, params=dict(params))
        response = sent.response
        if response.is_success:
            return [kind.from_json(item) for item in json_of(response)]
        error = error_from(response)
        if not is_empty_list(response):
            raise error
        parent = self._http.send("GET", f"{self._path}/id/{path_id(id)}", idempotent=True)
        if parent.response.is_success:
            return []
        parent_error = error_from(parent.response)
        if isinstance(parent_error, NotFound):
            raise parent_error
        if isinstance(parent_error, Forbidden):  # may read the list, not the parent
            if " has the id " in error.detail:
                raise error
            return []
        raise parent_error

    def all(self, *, limit: int | None = None, offset: int | None = None) -> list[T]:
        """Every object (``GET /all``), in the service's order; ``[]`` when there is none.
        ``limit``/``offset`` page the list (servers with paging only)."""
        return self._list(f"{self._path}/all", paging(limit, offset), self._type)

    def search(
        self, *, limit: int | None = None, offset: int | None = None, **criteria: Any
    ) -> list[T]:
        """The objects matching ``criteria`` (``GET /``; the contract's exact filters, e.g.
        ``model_name=...``, ``model_info={...}`` matched by containment); ``[]`` when none.
        An unknown criterion is an :class:`Invalid` naming it."""
        params = {name: query_value(value) for name, value in criteria.items()}
        params.update(paging(limit, offset))
        return self._list(self._path, params, self._type)

    # --- one object ------------------------------------------------------------------------

    def get(self, id: Id) -> T:
        """One object by id; :class:`NotFound` for an unknown id."""
        response = self._http.request("GET", f"{self._path}/id/{path_id(id)}", idempotent=True)
        return self._type.from_json(json_of(response))

    def create(self, **fields: Any) -> T:
        """Create one from the contract's fields (``Conflict`` with ``existing_id`` when the
        name is taken). Not retried once sent: a repeat could answer 409 for its own work."""
        response = self._http.request(
            "POST", self._path, idempotent=False, json_body=json_value(fields)
        )
        return self._type.from_json(json_of(response))

    def update(self, id: Id, **fields: Any) -> T:
        """Replace the fields given (``PATCH``); no field is an :class:`Invalid`. Retried
        like a read: sending the same values twice changes nothing more."""
        response = self._http.request(
            "PATCH",
            f"{self._path}/id/{path_id(id)}",
            idempotent=True,
            json_body=json_value(fields),
        )
        return self._type.from_json(json_of(response))

    def delete(self, id: Id) -> None:
        """Delete one (:class:`NotFound` for an unknown id, :class:`Conflict` when records
        use it). Retried like a read; a retry that finds the object gone after an earlier
        try may have reached the service counts as deleted."""
        sent = self._http.send("DELETE", f"{self._path}/id/{path_id(id)}", idempotent=True)
        response = sent.response
        if response.status_code == 404 and sent.resent:
            return
        if not response.is_success:
            raise error_from(response)


class Models(Resource[Model]):
    """``/api/models``: models, their runs, datasets and experiments."""

    _path = "/api/models"
    _type = Model

    def runs(self, id: Id, *, limit: int | None = None, offset: int | None = None) -> list[Run]:
        """The model's runs, oldest first; ``[]`` when it has none."""
        return self._sub_list(id, "runs", Run, paging(limit, offset))

    def create_run(self, id: Id, model_run_info: Mapping[str, Any] | None = None) -> Run:
        """A new run of the model (always a new one, so it is not retried once sent)."""
        body = {} if model_run_info is None else {"model_run_info": json_value(model_run_info)}
        response = self._http.request(
            "POST", f"{self._path}/id/{path_id(id)}/runs", idempotent=False, json_body=body
        )
        return Run.from_json(json_of(response))

    def datasets(
        self, id: Id, *, limit: int | None = None, offset: int | None = None
    ) -> list[Dataset]:
        """The datasets linked to the model; ``[]`` when none."""
        return self._sub_list(id, "datasets", Dataset, paging(limit, offset))

    def create_dataset(self, id: Id, **fields: Any) -> Dataset:
        """A dataset linked to the model, from ``dataset_name`` (required), ``dataset_info``,
        ``collection_date``, ``experiment_name``."""
        response = self._http.request(
            "POST",
            f"{self._path}/id/{path_id(id)}/datasets",
            idempotent=False,
            json_body=json_value(fields),
        )
        return Dataset.from_json(json_of(response))

    def experiments(
        self, id: Id, *, limit: int | None = None, offset: int | None = None
    ) -> list[Experiment]:
        """The experiments linked to the model; ``[]`` when none."""
        return self._sub_list(id, "experiments", Experiment, paging(limit, offset))


class Experiments(Resource[Experiment]):
    """``/api/experiments``, and the objects linked to an experiment."""

    _path = "/api/experiments"
    _type = Experiment

    def seasons(
        self, id: Id, *, limit: int | None = None, offset: int | None = None
    ) -> list[Season]:
        """The experiment's seasons; ``[]`` when none."""
        return self._sub_list(id, "seasons", Season, paging(limit, offset))

    def sites(self, id: Id, *, limit: int | None = None, offset: int | None = None) -> list[Site]:
        """The sites linked to the experiment; ``[]`` when none."""
        return self._sub_list(id, "sites", Site, paging(limit, offset))

    def datasets(
        self, id: Id, *, limit: int | None = None, offset: int | None = None
    ) -> list[Dataset]:
        """The datasets linked to the experiment; ``[]`` when none."""
        return self._sub_list(id, "datasets", Dataset, paging(limit, offset))

    def models(self, id: Id, *, limit: int | None = None, offset: int | None = None) -> list[Model]:
        """The models linked to the experiment; ``[]`` when none."""
        return self._sub_list(id, "models", Model, paging(limit, offset))


class Seasons(Resource[Season]):
    """``/api/seasons`` (a season is created with ``experiment_name``)."""

    _path = "/api/seasons"
    _type = Season


class Sites(Resource[Site]):
    """``/api/sites``."""

    _path = "/api/sites"
    _type = Site
