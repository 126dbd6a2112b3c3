"""Record endpoints: adding records (one, or many in a bulk body of any of the streams'
formats), the two streams, and reading, changing, deleting and downloading one record."""

from __future__ import annotations

import contextlib
import logging
import uuid

from django.core.files.uploadedfile import UploadedFile
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from config.error_views import allow_methods
from models_api.api.exception_handler import unavailable_response
from models_api.api.openapi import DeletedSerializer, ErrorSerializer
from models_api.api.paging import StreamPaging
from models_api.api.parsers import JSONParser
from models_api.api.replicas import replica_eligible
from models_api.api.viewsets import ContractViewSet, DestroyMixin, UpdateMixin
from models_api.models import MLModel
from records import services, storage
from records.filtersets import RecordFilterSet, RecordWindowFilterSet
from records.ingest import ingest_records
from records.models import ModelRecord
from records.parsers import BULK_PARSERS, LimitedMultiPartParser, bulk_body
from records.renderers import (
    RECORD_RENDERERS,
    ArrowStreamRenderer,
    CSVRenderer,
    NDJSONRenderer,
    ParquetRenderer,
    RecordRenderer,
)
from records.representation import RecordBatches, render_new
from records.serializers import (
    IngestResultSerializer,
    RecordFormSerializer,
    RecordInputSerializer,
    RecordSerializer,
    RecordUpdateSerializer,
)
from records.validation import RecordInput, form_upload, parse_record

logger = logging.getLogger(__name__)


def record_response(pk: str, *, model_id: uuid.UUID | None = None) -> HttpResponse:
    """The JSON of the record ``pk``: a stream's line, by the same encoder (one query; an id
    that is not a UUID is not found either).

    ``model_id``, when the caller has it at no cost, narrows the query: on a table
    partitioned by model the planner then reads one partition, where the id alone has it
    plan the name joins over every partition.
    """
    try:
        records = ModelRecord.objects.filter(pk=uuid.UUID(pk))
        if model_id is not None:
            records = records.filter(model_id=model_id)
        body = b"".join(NDJSONRenderer().encode(RecordBatches(records)))
    except ValueError:
        body = b""
    if not body:
        raise NotFound(f"No record has the id '{pk}'.")
    return HttpResponse(body.rstrip(b"\n"), content_type="application/json")


def stream_response(
    renderer: RecordRenderer, batches: RecordBatches, *, model: MLModel
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(renderer.encode(batches), content_type=renderer.content_type)
    response["X-Accel-Buffering"] = "no"  # let a proxy pass records on as they come
    if renderer.attachment:
        response["Content-Disposition"] = content_disposition_header(
            True, f"{model.model_name} records.{renderer.extension}"
        )
    return response


_STREAM_DESCRIPTIONS = {
    NDJSONRenderer.media_type: "One record per line, ordered by timestamp then id.",
    CSVRenderer.media_type: "RFC 4180: a header row of the 18 fields, then a row per record.",
    ArrowStreamRenderer.media_type: "Arrow IPC stream: one column per field, typed.",
    ParquetRenderer.media_type: "Parquet, the Arrow stream's columns; an attachment.",
}
_stream_schema = {
    "responses": {
        **{
            (200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description=description)
            for media_type, description in _STREAM_DESCRIPTIONS.items()
        },
        400: ErrorSerializer,
        404: ErrorSerializer,
        406: ErrorSerializer,
    },
}


_BULK_SCHEMAS = {
    "application/x-ndjson": OpenApiTypes.STR,
    "text/csv": OpenApiTypes.STR,
    "application/vnd.apache.arrow.stream": OpenApiTypes.BINARY,
    "application/vnd.apache.parquet": OpenApiTypes.BINARY,
}


@extend_schema_view(
    list=extend_schema(summary="Stream the model's records (exact filters)", **_stream_schema),
    create=extend_schema(
        summary="Add a record (multipart form or JSON), or many (an NDJSON, CSV, Arrow or "
        "Parquet bulk body)",
        description=(
            "A bulk body holds records in their input fields (NDJSON: one JSON object a line; "
            "CSV: a header row of input field names, JSON fields as JSON text, an empty cell "
            "a field not given; Arrow IPC stream and Parquet: a column per input field). It "
            "is written in one transaction, all or nothing: a 400 names each bad line or row "
            "by its number (from 1; a CSV header not counted), an unknown column or a body "
            "that is not its format is a 400, and records that exist are skipped and counted. "
            "Columns the server assigns (ids, model_name, created_at, updated_at) are refused "
            "like any unknown field; record_file may only be null."
        ),
        request={
            "multipart/form-data": RecordFormSerializer,
            "application/json": RecordInputSerializer,
            **{parser.media_type: _BULK_SCHEMAS[parser.media_type] for parser in BULK_PARSERS},
        },
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="RecordOrIngestResult",
                    serializers=[RecordSerializer, IngestResultSerializer],
                    resource_type_field_name=None,
                ),
                description="The record; for a bulk body, an IngestResult.",
            ),
            400: ErrorSerializer,
            404: ErrorSerializer,
            409: ErrorSerializer,
            413: ErrorSerializer,
            503: ErrorSerializer,
        },
    ),
    filter_records=extend_schema(
        summary="Stream the model's records in a time window, filtered by lists of names",
        filters=True,
        **_stream_schema,
    ),
)
class ModelRecordsViewSet(ContractViewSet):
    """``/api/models/id/{model_pk}/records``: add records and stream them."""

    queryset = ModelRecord.objects.all()
    filterset_class = RecordFilterSet
    filtered_actions = frozenset({"list", "filter_records"})
    paged_actions = frozenset({"list", "filter_records"})
    paging_class = StreamPaging
    parser_classes = [JSONParser, LimitedMultiPartParser, *BULK_PARSERS]
    serializer_class = RecordSerializer

    def get_model(self) -> MLModel:
        try:
            return MLModel.objects.get_named(self.model_id())
        except MLModel.DoesNotExist:
            raise self.model_not_found() from None

    def model_id(self) -> uuid.UUID:
        try:
            return uuid.UUID(self.kwargs["model_pk"])
        except ValueError:
            raise self.model_not_found() from None

    def model_not_found(self) -> NotFound:
        return NotFound(f"No model has the id '{self.kwargs['model_pk']}'.")

    def get_renderers(self):
        """The record formats for the streams; JSON for everything else."""
        if self.action in self.filtered_actions:
            return [renderer() for renderer in RECORD_RENDERERS]
        return super().get_renderers()

    @replica_eligible
    def stream(self) -> StreamingHttpResponse:
        """Both streams, in every format: a replica may answer (chosen before the first
        byte; the batches keep reading from it after the view has returned)."""
        model = self.get_model()
        batches = RecordBatches(
            self.filter_queryset(ModelRecord.objects.for_model(model)),
            offset=self.page.offset,
            limit=self.page.limit,
        )
        return stream_response(self.request.accepted_renderer, batches, model=model)

    def list(self, request: Request, model_pk: str) -> StreamingHttpResponse:
        return self.stream()

    @action(detail=False, methods=["get"], url_path="filter", filterset_class=RecordWindowFilterSet)
    def filter_records(self, request: Request, model_pk: str) -> StreamingHttpResponse:
        return self.stream()

    def create(self, request: Request, model_pk: str) -> HttpResponse:
        """A bulk body, or one record.

        The model is looked up with the record's names (one query, where a single-record
        POST used to spend a round trip on the model alone), so after reading the body; an
        unknown model still answers 404 whatever is wrong with the body.
        """
        try:
            bulk = bulk_body(request)
            if bulk is None:
                record, upload = self.posted_record(request)
        except Exception:
            self.get_model()
            raise
        if bulk is not None:
            with contextlib.closing(bulk):
                result = ingest_records(
                    model=self.get_model(), records=bulk.records(), unit=bulk.unit
                )
            return Response(IngestResultSerializer(result).data)
        try:
            resolver = services.ReferenceResolver.with_model(self.model_id(), record)
        except MLModel.DoesNotExist:
            raise self.model_not_found() from None
        created, refs = services.add_record(
            model=resolver.model, record=record, upload=upload, resolver=resolver
        )
        body = render_new(
            created,
            model_name=resolver.model.model_name,
            dataset_name=refs.dataset_name,
            experiment_name=record.experiment_name,
            season_name=record.season_name,
            site_name=record.site_name,
        )
        return HttpResponse(body, content_type="application/json")

    @staticmethod
    def posted_record(request: Request) -> tuple[RecordInput, UploadedFile | None]:
        if request.content_type.startswith("multipart/form-data"):
            return parse_record(request.POST, form=True), form_upload(request.FILES)
        return parse_record(request.data), None


@extend_schema_view(
    retrieve=extend_schema(
        summary="One record", responses={200: RecordSerializer, 404: ErrorSerializer}
    ),
    partial_update=extend_schema(
        summary="Replace a record's model_data and/or record_info",
        request=RecordUpdateSerializer,
        responses={200: RecordSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
    ),
    destroy=extend_schema(
        summary="Delete a record and its file",
        responses={200: DeletedSerializer, 404: ErrorSerializer},
    ),
    download=extend_schema(
        summary="307 to a short-lived signed URL of the record's file",
        responses={
            307: OpenApiResponse(
                description="Location: the signed URL (works without other credentials).",
            ),
            404: ErrorSerializer,
            503: ErrorSerializer,
        },
    ),
)
class RecordViewSet(UpdateMixin, DestroyMixin, ContractViewSet):
    """``/api/models/records/id/{id}``: one record."""

    queryset = ModelRecord.objects.all()
    serializer_class = RecordUpdateSerializer

    def get_object(self) -> ModelRecord:
        self.record = super().get_object()
        return self.record

    def retrieve(self, request: Request, pk: str) -> HttpResponse:
        return record_response(pk)

    def partial_update(self, request: Request, pk: str) -> HttpResponse:
        super().partial_update(request, pk)
        return record_response(pk, model_id=self.record.model_id)

    def perform_destroy(self, instance: ModelRecord) -> None:
        services.delete_record(instance)

    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> Response:
        record = self.get_object()
        if not record.record_file:
            raise NotFound("This record has no file.")
        if not storage.file_exists(record.record_file):  # a link to nothing helps nobody
            raise NotFound("This record's file is missing from the storage.")
        url = storage.download_url(
            record.record_file, build_absolute_uri=request.build_absolute_uri
        )
        return Response(status=307, headers={"Location": url})


@csrf_exempt  # reads only; other methods get a JSON 405, not a CSRF page
@allow_methods("GET")
def signed_file(request: HttpRequest, token: str) -> HttpResponse:
    """The target of a local-storage download link: the signature is the credential."""
    if not storage.is_local():
        raise Http404
    try:
        key = storage.key_from_token(token)
    except storage.InvalidLink as error:
        return JsonResponse({"detail": str(error)}, status=403)
    try:
        handle, content_type = storage.open_local(key)
    except FileNotFoundError:
        return JsonResponse({"detail": "The file no longer exists."}, status=404)
    except OSError as error:  # the storage folder is gone, unreadable, a broken mount
        logger.warning("Signed download of %s: storage unavailable: %s", key, error)
        return unavailable_response("The file storage is unreachable. Please try again.")
    return FileResponse(
        handle, as_attachment=True, filename=storage.download_name(key), content_type=content_type
    )
