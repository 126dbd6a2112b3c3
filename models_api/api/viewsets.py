"""The base viewset behind every endpoint of the contract.

It carries the conventions that the contract sets for all endpoints, so that each concrete
viewset stays a few declarative lines:

- unknown (or repeated single-valued) query parameters answer 400 naming them;
- a path id that is not a UUID answers 404 like an unknown one;
- list endpoints take ``limit`` and ``offset`` (:mod:`models_api.api.paging`), and answer 404
  when the result (or the page asked for) is empty (the seed's rule);
- creates, updates and deletes answer 200; a delete answers ``{"id": ..., "deleted": true}``,
  or 403 when it would take along rows the user may not delete;
- a PATCH that names no field answers 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import Http404
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from models_api.api.deletion import check_delete_permissions
from models_api.api.filters import check_query_params
from models_api.api.paging import ListPaging, Page
from models_api.api.replicas import replica_eligible


def require_object(data: object) -> None:
    """A JSON body must be an object (DRF would answer "No data provided" for ``null``)."""
    if not isinstance(data, Mapping):
        raise ValidationError("Give the body as a JSON object, such as {\"name\": \"value\"}.")


class JSONErrorsMixin:
    """Errors are JSON whatever the request asked for (a 404 for a client that wanted Arrow,
    a 406 for one that wanted what nothing offers)."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400 and isinstance(response, Response):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
            response.renderer_context = self.get_renderer_context()
        return response


class ContractViewSet(JSONErrorsMixin, viewsets.GenericViewSet):
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    #: The model whose permissions an action needs, when it is not the viewset's own.
    permission_model: type[Model] | None = None
    #: Actions whose query parameters are the filterset's; every other action takes none.
    filtered_actions = frozenset({"list"})
    #: Actions whose GET answers a list: they take ``limit`` and ``offset`` as well.
    paged_actions: frozenset[str] = frozenset()
    #: How those two are read (DRF's parameter names; no envelope, see models_api.api.paging).
    paging_class: type[ListPaging] = ListPaging
    #: The page asked for (the whole list unless the action is paged).
    page = Page()

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # A method the path does not have is a 405 whatever format was asked for.
        if getattr(self, request.method.lower(), None) is None:
            force = True
        return super().perform_content_negotiation(request, force=force)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if getattr(self, request.method.lower(), None) is None:
            return  # no handler for this method: DRF answers 405, whatever the query
        filterset_class = None
        if self.action in self.filtered_actions:
            filterset_class = getattr(self, "filterset_class", None)
        paging = self.get_paging(request.method)
        check_query_params(
            request.query_params, filterset_class, paging.query_params if paging else ()
        )
        if paging is not None:
            self.page = paging.page(request)

    def get_paging(self, method: str) -> ListPaging | None:
        """The paging of this action for ``method``, or None when it answers no list."""
        if self.action in self.paged_actions and method.upper() in ("GET", "HEAD"):
            return self.paging_class()
        return None

    @property
    def verbose_name(self) -> str:
        return self.queryset.model._meta.verbose_name

    def get_object(self) -> Model:
        try:
            return super().get_object()
        except Http404:
            lookup = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
            raise NotFound(f"No {self.verbose_name} has the id '{lookup}'.") from None

    @replica_eligible
    def list_response(self, queryset: QuerySet, serializer_class: type | None = None) -> Response:
        """The page asked for of the (ordered) ``queryset``, or 404 when it is empty.

        Every list endpoint answers through here, so a replica may answer them all (the
        object a list hangs off, ``get_object``, was read from the primary before)."""
        serializer_class = serializer_class or self.get_serializer_class()
        page = self.page.of(queryset)
        data = serializer_class(page, many=True, context=self.get_serializer_context()).data
        if not data:
            plural = queryset.model._meta.verbose_name_plural
            if self.page.offset:
                raise NotFound(f"No {plural} found at offset {self.page.offset}.")
            raise NotFound(f"No {plural} found.")
        return Response(data)


class ReadMixin:
    """``GET /all``, ``GET /`` (search with the filterset) and ``GET /id/{id}``."""

    paged_actions = frozenset({"all", "list"})

    @action(detail=False, methods=["get"], url_path="all", filter_backends=[])
    def all(self, request: Request) -> Response:
        return self.list_response(self.get_queryset())

    def list(self, request: Request) -> Response:
        return self.list_response(self.filter_queryset(self.get_queryset()))

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(self.get_object()).data)


class CreateMixin:
    """``POST /``: the serializer's ``create`` calls the app's service."""

    def create(self, request: Request) -> Response:
        require_object(request.data)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


class UpdateMixin:
    """``PATCH /id/{id}``: replace the fields sent; a body that names none is a 400."""

    def partial_update(self, request: Request, pk: str) -> Response:
        instance = self.get_object()  # an unknown id is a 404 whatever the body
        require_object(request.data)
        if not request.data:
            raise ValidationError("The request body names no field to change.")
        serializer = self.get_serializer(instance, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


class DestroyMixin:
    """``DELETE /id/{id}``: answers ``{"id": ..., "deleted": true}``.

    As on the admin's delete page, the user needs the ``delete`` permission of every type of
    row the deletion would take with it (a model's runs and records, an experiment's seasons):
    otherwise 403 naming them, and nothing is deleted. The row is locked first, so that what
    was checked is what is deleted.
    """

    def destroy(self, request: Request, pk: str) -> Response:
        instance = self.get_object()
        deleted_id = instance.pk
        with transaction.atomic():
            type(instance)._base_manager.select_for_update().filter(pk=instance.pk).exists()
            refusal = check_delete_permissions(request.user, instance)
            if refusal:
                raise PermissionDenied(refusal)
            self.perform_destroy(instance)
        return Response({"id": str(deleted_id), "deleted": True})

    def perform_destroy(self, instance: Model) -> None:
        instance.delete()


class WriteMixin(CreateMixin, UpdateMixin, DestroyMixin):
    """Create, update and delete."""
