"""Endpoints of the catalogue: ``/api/models``, ``/api/experiments``, ``/api/seasons``,
``/api/sites``. The conventions they share live in :mod:`models_api.api.viewsets`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from models_api import services
from models_api.api.openapi import ErrorSerializer, contract_schema
from models_api.api.viewsets import ContractViewSet, ReadMixin, WriteMixin
from models_api.filtersets import (
    ExperimentFilterSet,
    MLModelFilterSet,
    SeasonFilterSet,
    SiteFilterSet,
)
from models_api.models import Dataset, Experiment, MLModel, ModelRun, Season, Site
from models_api.serializers import (
    DatasetSerializer,
    ExperimentSerializer,
    MLModelSerializer,
    ModelRunSerializer,
    SeasonSerializer,
    SiteSerializer,
)


@contract_schema("experiment", ExperimentSerializer)
class ExperimentViewSet(ReadMixin, WriteMixin, ContractViewSet):
    queryset = Experiment.objects.all()
    serializer_class = ExperimentSerializer
    filterset_class = ExperimentFilterSet
    paged_actions = ReadMixin.paged_actions | {"seasons", "sites", "datasets", "models"}

    def perform_destroy(self, instance: Experiment) -> None:
        services.delete_experiment(instance)

    # The objects linked to the experiment, each in the order of its own ``/all``; reading
    # them needs the view permission of their type.

    @extend_schema(
        summary="The experiment's seasons, ordered by name (404 when none)",
        responses={200: SeasonSerializer(many=True), 404: ErrorSerializer},
    )
    @action(detail=True, methods=["get"], permission_model=Season, filter_backends=[])
    def seasons(self, request: Request, pk: str) -> Response:
        """The experiment's seasons, in the order of ``/api/seasons/all``."""
        return self.list_response(self.get_object().seasons.all(), SeasonSerializer)

    @extend_schema(
        summary="Sites linked to the experiment, ordered by name (404 when none)",
        responses={200: SiteSerializer(many=True), 404: ErrorSerializer},
    )
    @action(detail=True, methods=["get"], permission_model=Site, filter_backends=[])
    def sites(self, request: Request, pk: str) -> Response:
        """The sites linked to the experiment, in the order of ``/api/sites/all``."""
        return self.list_response(self.get_object().sites.all(), SiteSerializer)

    @extend_schema(
        summary="Datasets linked to the experiment, ordered by name (404 when none)",
        responses={200: DatasetSerializer(many=True), 404: ErrorSerializer},
    )
    @action(detail=True, methods=["get"], permission_model=Dataset, filter_backends=[])
    def datasets(self, request: Request, pk: str) -> Response:
        """The datasets linked to the experiment, ordered by name."""
        return self.list_response(self.get_object().datasets.all(), DatasetSerializer)

    @extend_schema(
        summary="Models linked to the experiment, ordered by name (404 when none)",
        responses={200: MLModelSerializer(many=True), 404: ErrorSerializer},
    )
    @action(detail=True, methods=["get"], permission_model=MLModel, filter_backends=[])
    def models(self, request: Request, pk: str) -> Response:
        """The models linked to the experiment, in the order of ``/api/models/all``."""
        return self.list_response(self.get_object().models.all(), MLModelSerializer)


@contract_schema("season", SeasonSerializer)
class SeasonViewSet(ReadMixin, WriteMixin, ContractViewSet):
    queryset = Season.objects.select_related("experiment")
    serializer_class = SeasonSerializer
    filterset_class = SeasonFilterSet

    def perform_destroy(self, instance: Season) -> None:
        services.delete_unless_referenced(instance)


@contract_schema("site", SiteSerializer)
class SiteViewSet(ReadMixin, WriteMixin, ContractViewSet):
    queryset = Site.objects.all()
    serializer_class = SiteSerializer
    filterset_class = SiteFilterSet

    def perform_destroy(self, instance: Site) -> None:
        services.delete_unless_referenced(instance)


@contract_schema("model", MLModelSerializer)
class MLModelViewSet(ReadMixin, WriteMixin, ContractViewSet):
    queryset = MLModel.objects.all()
    serializer_class = MLModelSerializer
    filterset_class = MLModelFilterSet
    paged_actions = ReadMixin.paged_actions | {"experiments", "runs", "datasets"}

    @extend_schema(
        summary="Experiments linked to the model (404 when none)",
        responses={200: ExperimentSerializer(many=True), 404: ErrorSerializer},
    )
    @action(detail=True, methods=["get"], permission_model=Experiment, filter_backends=[])
    def experiments(self, request: Request, pk: str) -> Response:
        model = self.get_object()
        return self.list_response(model.experiments.all(), ExperimentSerializer)

    @extend_schema(
        methods=["GET"],
        summary="The model's runs, oldest first (404 when none)",
        responses={200: ModelRunSerializer(many=True), 404: ErrorSerializer},
    )
    @extend_schema(
        methods=["POST"],
        summary="Create a run of the model",
        responses={200: ModelRunSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        permission_model=ModelRun,
        serializer_class=ModelRunSerializer,
        filter_backends=[],
    )
    def runs(self, request: Request, pk: str) -> Response:
        """``GET``: the model's runs, oldest first. ``POST``: always creates a new run."""
        model = self.get_object()
        if request.method == "GET":
            return self.list_response(model.runs.all())
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save(model=model)
        return Response(serializer.data)

    @extend_schema(
        methods=["GET"],
        summary="Datasets linked to the model (404 when none)",
        responses={200: DatasetSerializer(many=True), 404: ErrorSerializer},
    )
    @extend_schema(
        methods=["POST"],
        summary="Create a dataset linked to the model",
        responses={
            200: DatasetSerializer,
            400: ErrorSerializer,
            404: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    @action(
        detail=True,
        methods=["get", "post"],
        permission_model=Dataset,
        serializer_class=DatasetSerializer,
        filter_backends=[],
    )
    def datasets(self, request: Request, pk: str) -> Response:
        """``GET``: datasets linked to the model. ``POST``: create one linked to it."""
        model = self.get_object()
        if request.method == "GET":
            return self.list_response(model.datasets.all())
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save(model=model)
        return Response(serializer.data)
