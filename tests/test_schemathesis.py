"""Property-based tests of every operation against the service's own OpenAPI schema.

Schemathesis loads the schema from ``/api/schema/`` and calls the WSGI application in process
(the same application gunicorn serves), authenticated with the real token of a user that holds
every API permission. Each operation gets the explicit examples, the coverage phase (boundary
and type-confusion values) and a bounded number of fuzzed cases, positive and negative, with a
fixed seed: a CI failure replays locally as it happened.

Checks, for every response:

- schemathesis' own: never a 5xx, the status code is documented, the content type and the body
  match the schema, negative (schema-invalid) data is refused, an undeclared method answers
  405, a request without credentials is refused;
- the contract's: every 4xx is a JSON object with a non-empty string ``detail``; every NDJSON
  stream line is a record object, in stream order; a bulk ingest answers ``IngestResult`` and
  counts every line; a record added as JSON or a form comes back with exactly what was sent.

``positive_data_acceptance`` is left out: the contract makes a request that names an unknown
experiment, season or site a 400, a rule a schema cannot express, so schema-valid data is
legitimately refused most of the time. The schema's own gaps that this check would have shown
are covered by the ``test_schema_*`` tests at the end.

Data: the demo catalogue (``load_demo``) plus a few records (one with a file), a run and the
datasets the records create. Generated path ids are swapped for real ones three times in four
(unless the id is the part a negative case made invalid), and positive cases get real names,
records and bulk bodies part of the time, so that requests reach real objects (200, 409) and
bodies get validated instead of meeting a 404. Hypothesis draws these choices, so they are
seeded and shrink with the case.

Database: every example runs inside a savepoint that is rolled back, so examples see the same
seeded state (Hypothesis needs a failure to replay on the same state) and the test's own
transaction, rolled back by pytest-django, keeps anything from leaking into other tests.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import random
import re
from types import SimpleNamespace

import hypothesis
import jsonschema
import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import close_old_connections, transaction
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.checks import positive_data_acceptance

from config.wsgi import application
from models_api.models import Dataset, Experiment, MLModel, ModelRun, Season, Site
from records import services
from records.models import ModelRecord
from records.validation import parse_record
from tests.conftest import record_body

#: Change only together with a note in the commit: CI failures are reproduced with it.
SEED = 20240601
#: Fuzzed examples per operation, both generation modes together (the coverage phase adds
#: its own): about two minutes for the whole file on a 2-core machine.
CATALOGUE_EXAMPLES = 25
RECORD_EXAMPLES = 100
NDJSON = "application/x-ndjson"
RECORDS_PATH = "/api/models/id/{model_pk}/records/"

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
schema.config.seed = SEED
# The token is sent by the test itself: generating credentials would only spend examples on
# requests that cannot authenticate.
schema.config.generation.update(deterministic=True, database="none", with_security_parameters=False)
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])

RAW_SCHEMA = schema.raw_schema


def _as_json_schema(node):
    """OpenAPI 3.0's ``nullable`` as JSON Schema (``jsonschema`` does not know the keyword)."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


COMPONENTS = _as_json_schema(RAW_SCHEMA["components"])
RECORD_SCHEMA = {"$ref": "#/components/schemas/Record", "components": COMPONENTS}
ERROR_BODY = re.compile(r"\S")


# --- Serializers -----------------------------------------------------------------------------


@schemathesis.serializer(NDJSON)
def ndjson_serializer(ctx, value):
    """The bulk body: text as it is (lines), anything else as one JSON line."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode() + b"\n"


#: The bulk bodies of the other formats: whatever is drawn goes as it is (random text or bytes
#: are bodies that are not their format, which must answer 400, never 500).
COLUMNAR_BODIES = ("text/csv", "application/vnd.apache.arrow.stream",
                   "application/vnd.apache.parquet")
BULK_BODIES = (NDJSON, *COLUMNAR_BODIES)


@schemathesis.serializer(*COLUMNAR_BODIES)
def columnar_serializer(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value).encode()


# --- Real objects for the generated requests ---------------------------------------------------

#: Filled by the ``seeded`` fixture before each test; read by the hooks while examples are drawn.
REAL = SimpleNamespace()


def _ids_for(path: str) -> list[str]:
    if path.startswith("/api/models/records/"):
        return REAL.record_ids
    if path.startswith("/api/models/"):
        return REAL.model_ids
    if path.startswith("/api/experiments/"):
        return REAL.experiment_ids
    if path.startswith("/api/seasons/"):
        return REAL.season_ids
    if path.startswith("/api/sites/"):
        return REAL.site_ids
    return []


def _timestamps() -> st.SearchStrategy[str]:
    """Timestamps as clients send them: existing ones (to meet 409s), other zones, no zone."""
    zones = st.sampled_from(["Z", "z", "+00:00", "+14:00", "-12:00", "+05:45", ""])
    moments = st.datetimes(
        min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(2100, 1, 1)
    )
    fresh = st.builds(lambda moment, zone: moment.isoformat() + zone, moments, zones)
    return st.one_of(st.sampled_from(REAL.timestamps), fresh)


#: Any JSON value, with integers beyond 64 bits (kept exactly since the big-integer fix).
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def record_fields(draw) -> dict:
    """One record in the JSON form, naming real experiments, seasons and sites."""
    experiment, season = draw(st.sampled_from(REAL.seasons))
    body = {
        "timestamp": draw(_timestamps()),
        "model_data": draw(JSON_VALUES),
        "experiment_name": experiment,
        "season_name": season,
        "site_name": draw(st.sampled_from(REAL.sites)),
    }
    if draw(st.booleans()):
        body["dataset_name"] = draw(st.sampled_from([*REAL.datasets, "Fuzzed dataset"]))
    if draw(st.booleans()):
        body["collection_date"] = draw(
            st.dates(datetime.date(1990, 1, 1), datetime.date(2090, 1, 1))
        ).isoformat()
    if draw(st.booleans()):
        body["record_info"] = draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3))
    return body


@st.composite
def ndjson_bodies(draw) -> str:
    """Bulk bodies: valid records, repeats, blank lines and now and then a broken line."""
    lines = [
        json.dumps(fields) for fields in draw(st.lists(record_fields(), min_size=1, max_size=6))
    ]
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(lines)))  # a repeat within the body
    if draw(st.integers(0, 4)) == 4:
        lines.insert(
            draw(st.integers(0, len(lines))),
            draw(st.sampled_from(["", "{", "[]", "null", '{"timestamp": 1}'])),
        )
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""]))


@st.composite
def window_queries(draw) -> dict:
    """The window stream's filters: bounds (either, both, reversed) and repeated-key lists."""
    query = {}
    if draw(st.booleans()):
        query["start_timestamp"] = draw(_timestamps())
    if draw(st.booleans()):
        query["end_timestamp"] = draw(_timestamps())
    for field, names in (
        ("experiment_names", REAL.experiments),
        ("season_names", [season for _, season in REAL.seasons]),
        ("site_names", REAL.sites),
        ("dataset_names", REAL.datasets),
    ):
        if draw(st.integers(0, 2)) == 0:
            query[field] = draw(
                st.lists(st.sampled_from([*names, "Nowhere"]), min_size=1, max_size=3)
            )
    return query


def _real_names(container: dict, draws) -> None:
    """Swap some generated names for real ones (a season together with its experiment)."""
    if "season_name" in container or "experiment_name" in container:
        if draws.usually(2):
            experiment, season = draws.choice(REAL.seasons)
            if "experiment_name" in container:
                container["experiment_name"] = experiment
            if "season_name" in container:
                container["season_name"] = season
    for field, names in (
        ("site_name", REAL.sites),
        ("dataset_name", REAL.datasets),
        ("model_name", REAL.models),
    ):
        if field in container and draws.usually(2):
            container[field] = draws.choice(names)


class _Draws:
    """Choices made by Hypothesis (fuzzed cases: shrinkable) or by a generator seeded from the
    case itself (coverage cases, which no strategy hook sees): deterministic either way."""

    def __init__(self, draw=None, seed: str = "") -> None:
        self._draw = draw
        self._random = random.Random(hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest())

    def __call__(self, strategy):
        assert self._draw is not None, "Coverage cases only choose among given values."
        return self._draw(strategy)

    def below(self, n: int) -> int:
        return self._draw(st.integers(0, n - 1)) if self._draw else self._random.randrange(n)

    def usually(self, out_of: int = 4) -> bool:
        """True ``out_of - 1`` times in ``out_of``. True is the simplest value for Hypothesis
        (0 is where it starts and shrinks to), so failures shrink towards real objects."""
        return self.below(out_of) != out_of - 1

    def choice(self, values):
        return self._draw(st.sampled_from(values)) if self._draw else self._random.choice(values)


def _negated(meta, location: ParameterLocation) -> bool:
    """Whether schemathesis made ``location`` of this case invalid on purpose."""
    if meta is None:
        return True
    if not meta.generation.mode.is_negative:
        return False
    component = meta.components.get(location)
    if component is not None:
        return component.mode.is_negative
    negated_location = getattr(meta.phase.data, "parameter_location", None)
    return negated_location is None or negated_location == location


def plan_edits(case, draws: _Draws, *, paths_only: bool = False) -> dict:
    """New containers for ``case``: real ids in three paths in four (unless the path is the
    part schemathesis negated); for positive cases also real names, and for record posts real
    records and bulk bodies most of the time. Negative parts are never touched."""
    meta = case.meta
    edits: dict = {}
    path = case.operation.path
    if case.path_parameters and not _negated(meta, ParameterLocation.PATH):
        parameters = dict(case.path_parameters)
        for name in ("id", "model_pk"):
            if name in parameters and draws.usually():
                parameters[name] = draws.choice(_ids_for(path))
        edits["path_parameters"] = parameters
    if paths_only or meta is None or not meta.generation.mode.is_positive:
        return edits
    if case.query:
        query = dict(case.query)
        _real_names(query, draws)
        edits["query"] = query
    if path == RECORDS_PATH + "filter/":
        # BUG (test_schema_documents_the_record_window_filters): the schema documents no
        # query parameter here, so nothing would ever reach the filters otherwise.
        edits["query"] = draws(window_queries())
    if case.operation.method.upper() == "POST" and path == RECORDS_PATH:
        if case.media_type == NDJSON:
            if draws.usually():
                edits["body"] = draws(ndjson_bodies())
        elif isinstance(case.body, dict) and draws.usually(3):
            fields = draws(record_fields())
            if case.media_type.startswith("multipart/"):
                for key in ("model_data", "record_info"):
                    if key in fields:
                        fields[key] = json.dumps(fields[key])
                if draws.usually(2):
                    fields["record_file"] = draws(st.binary(min_size=1, max_size=64))
            edits["body"] = fields
    elif isinstance(case.body, dict):
        body = dict(case.body)
        _real_names(body, draws)
        edits["body"] = body
    return edits


#: Edits drawn by the hook, applied by the test just before the call: ``id(case)`` -> edits.
PLANNED: dict[int, tuple[object, dict]] = {}


@schema.hook
def flatmap_case(context, case):
    """Fuzzed and example cases: draw the edits with Hypothesis (so they shrink with the case)."""
    if case.meta is None or case.meta.phase.name == TestPhase.COVERAGE:
        return st.just(case)

    @st.composite
    def planned(draw):
        PLANNED[id(case)] = (case, plan_edits(case, _Draws(draw)))
        return case

    return planned()


CONTAINERS = {
    "path_parameters": ParameterLocation.PATH,
    "query": ParameterLocation.QUERY,
    "body": ParameterLocation.BODY,
}


def apply_edits(case) -> None:
    """Aim the case at real objects just before it is sent.

    The edits keep every part as valid or invalid as it was generated, so the case keeps its
    classification: its baseline is moved to the edited values. (Otherwise schemathesis would
    re-classify it by validating it against the schema the first time a check derives a probe
    from it, and it counts any body holding bytes, such as a multipart file, as invalid: a
    valid record with a file would become "negative data that was accepted".)
    """
    if id(case) in PLANNED and PLANNED[id(case)][0] is case:
        edits = PLANNED.pop(id(case))[1]
    else:
        # Coverage cases (boundary values, wrong types) are built when the tests are collected,
        # before any data exists, and pass through no strategy hook: only their path is aimed.
        seed = repr((case.method, case.path_parameters, case.query, case.body, case.media_type))
        edits = plan_edits(case, _Draws(seed=seed), paths_only=True)
    meta = case._meta
    for container, value in edits.items():
        object.__setattr__(case, container, value)  # no change tracking: see above
        location = CONTAINERS[container]
        if meta is not None and location in meta.components:
            baseline = case._hash_container(value)
            meta._initial_hashes[location] = baseline
            meta.update_validated_hash(location, baseline)
            if isinstance(value, dict):
                meta._initial_containers[location] = dict(value)


# --- The contract's checks -------------------------------------------------------------------


def contract_error_body(ctx, response, case):
    """Every 4xx is ``{"detail": "<non-empty sentence>", ...}`` as JSON."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), (
        f"{response.status_code} answered with {content_type!r}, not a JSON error body"
    )
    body = response.json()
    assert isinstance(body, dict), f"The error body is not an object: {body!r}"
    detail = body.get("detail")
    assert isinstance(detail, str) and ERROR_BODY.search(detail), (
        f"The error body has no non-empty string detail: {body!r}"
    )
    if "errors" in body:
        errors = body["errors"]
        assert isinstance(errors, dict) and errors, f"errors is not a non-empty object: {body!r}"
        for field, messages in errors.items():
            assert isinstance(messages, list) and messages, (field, messages)
            assert all(isinstance(message, str) and message for message in messages), (
                field,
                messages,
            )
    return None


def stream_lines_are_records(ctx, response, case):
    """A 200 NDJSON stream: every line is the record object, ordered by timestamp then id."""
    content_type = response.headers.get("content-type", [""])[0]
    if response.status_code != 200 or not content_type.startswith(NDJSON):
        return None
    text = response.content.decode("utf-8")
    assert text == "" or text.endswith("\n"), "The stream does not end with a newline"
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        record = json.loads(line)
        try:
            jsonschema.validate(record, RECORD_SCHEMA)
        except jsonschema.ValidationError as error:
            raise AssertionError(f"Line {number} is not a Record: {error.message}") from None
        keys.append((record["timestamp"], record["id"]))
    parsed = [(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")), rid) for ts, rid in keys]
    assert parsed == sorted(parsed), "The stream is not ordered by timestamp then id"
    return None


def bulk_answer_is_ingest_result(ctx, response, case):
    """A bulk ingest's 200 is ``{"created": n, "skipped_existing": m}``, one count per line."""
    if case.operation.path != RECORDS_PATH or case.media_type not in BULK_BODIES:
        return None
    if response.status_code != 200:
        return None
    body = response.json()
    assert set(body) == {"created", "skipped_existing"}, body
    assert all(isinstance(body[key], int) and body[key] >= 0 for key in body), body
    if isinstance(case.body, str) and case.media_type == NDJSON:
        lines = [line for line in case.body.splitlines() if line.strip()]
        assert body["created"] + body["skipped_existing"] == len(lines), (body, len(lines))
    return None


def _same_json(sent, stored) -> bool:
    """Equal as JSON values (1 and 1.0 are one number)."""
    return json.dumps(sent, sort_keys=True) == json.dumps(stored, sort_keys=True) or sent == stored


def created_record_echoes_the_request(ctx, response, case):
    """A record added as JSON or a form comes back with exactly the values sent."""
    if case.operation.path != RECORDS_PATH or case.method.upper() != "POST":
        return None
    if (response.status_code != 200 or not isinstance(case.body, dict)
            or case.media_type in BULK_BODIES):
        return None
    sent, record = dict(case.body), response.json()
    if case.media_type.startswith("multipart/"):
        for key in ("model_data", "record_info"):
            if isinstance(sent.get(key), str):
                sent[key] = json.loads(sent[key])
    assert _same_json(sent["model_data"], record["model_data"]), (
        sent["model_data"],
        record["model_data"],
    )
    assert _same_json(sent.get("record_info") or {}, record["record_info"]), (
        sent.get("record_info"),
        record["record_info"],
    )
    for name in ("experiment_name", "season_name", "site_name", "dataset_name", "collection_date"):
        if name in sent:
            assert record[name] == sent[name].strip(), (name, sent[name], record[name])
    assert (record["record_file"] is not None) == (sent.get("record_file") is not None), record[
        "record_file"
    ]
    return None


CONTRACT_CHECKS = [
    contract_error_body,
    stream_lines_are_records,
    bulk_answer_is_ingest_result,
    created_record_echoes_the_request,
]


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture
def in_process_connection():
    """Keep the test's connection (and its transaction) across requests.

    The WSGI handler closes "obsolete" connections when a request starts and ends; inside a
    test transaction that would break the transaction. Django's test client disconnects the
    same handlers for the same reason.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _add_record(model: MLModel, upload=None, **fields) -> None:
    services.add_record(model=model, record=parse_record(record_body(**fields)), upload=upload)


@pytest.fixture
def seeded(db, in_process_connection, media_root):
    """The demo catalogue, records (one with a file), a run, and a token with every right."""
    call_command("load_demo", stdout=io.StringIO())
    call_command("create_api_user", "fuzzer", stdout=io.StringIO())
    model_a = MLModel.objects.get(model_name="Model A")
    _add_record(model_a)
    _add_record(
        model_a,
        timestamp="2024-06-01T11:30:00.250000Z",
        site_name="Site A2",
        record_info={"camera": "rgb"},
    )
    _add_record(
        model_a,
        timestamp="2024-07-01T08:00:00+02:00",
        dataset_name="Flight 7",
        upload=SimpleUploadedFile("leaf.png", b"\x89PNG\r\n\x1a\nleaf", "image/png"),
    )
    _add_record(
        MLModel.objects.get(model_name="Model B"),
        timestamp="2025-03-01T00:00:00Z",
        experiment_name="Experiment B",
        season_name="Season 1B",
        site_name="Site B1",
    )
    ModelRun.objects.create(model=model_a, model_run_info={"epochs": 3})

    PLANNED.clear()
    REAL.model_ids = [
        str(pk) for pk in MLModel.objects.order_by("model_name").values_list("id", flat=True)
    ]
    REAL.experiment_ids = [
        str(pk)
        for pk in Experiment.objects.order_by("experiment_name").values_list("id", flat=True)
    ]
    REAL.season_ids = [
        str(pk) for pk in Season.objects.order_by("season_name").values_list("id", flat=True)
    ]
    REAL.site_ids = [
        str(pk) for pk in Site.objects.order_by("site_name").values_list("id", flat=True)
    ]
    REAL.record_ids = [
        str(pk) for pk in ModelRecord.objects.order_by("timestamp").values_list("id", flat=True)
    ]
    REAL.models = list(MLModel.objects.order_by("model_name").values_list("model_name", flat=True))
    REAL.experiments = list(
        Experiment.objects.order_by("experiment_name").values_list("experiment_name", flat=True)
    )
    REAL.seasons = [
        (season.experiment.experiment_name, season.season_name)
        for season in Season.objects.order_by("season_name")
    ]
    REAL.sites = list(Site.objects.order_by("site_name").values_list("site_name", flat=True))
    REAL.datasets = list(
        Dataset.objects.order_by("dataset_name").values_list("dataset_name", flat=True)
    )
    REAL.timestamps = [
        timestamp.isoformat().replace("+00:00", "Z")
        for timestamp in ModelRecord.objects.order_by("timestamp").values_list(
            "timestamp", flat=True
        )
    ]
    return Token.objects.get(user__username="fuzzer").key


# --- The property tests ----------------------------------------------------------------------

#: Every operation once, in two groups: the record endpoints (three body types, streams,
#: files) get more examples than the catalogue's plain JSON endpoints.
catalogue_schema = schema.exclude(path_regex="/records")
record_schema = schema.include(path_regex="/records")
#: The fixtures are set up once per operation on purpose: every example runs in a savepoint
#: that is rolled back (below), so each one starts from the same seeded state.
HEALTH_CHECKS = [hypothesis.HealthCheck.function_scoped_fixture, hypothesis.HealthCheck.too_slow]


def call_and_validate(case, token: str) -> None:
    apply_edits(case)
    with transaction.atomic():
        cache.clear()  # throttle counters: the unauthenticated probes must not run into 429s
        case.call_and_validate(
            headers={"Authorization": f"Token {token}"},
            additional_checks=CONTRACT_CHECKS,
            excluded_checks=[positive_data_acceptance],
        )
        transaction.set_rollback(True)


@catalogue_schema.parametrize()
@hypothesis.settings(max_examples=CATALOGUE_EXAMPLES, suppress_health_check=HEALTH_CHECKS)
def test_catalogue_operations_conform_to_the_schema_and_the_contract(case, seeded):
    call_and_validate(case, seeded)


@record_schema.parametrize()
@hypothesis.settings(max_examples=RECORD_EXAMPLES, suppress_health_check=HEALTH_CHECKS)
def test_record_operations_conform_to_the_schema_and_the_contract(case, seeded):
    call_and_validate(case, seeded)


# --- The schema's own gaps (found by the run above) ------------------------------------------


def _operation(path: str, method: str) -> dict:
    return RAW_SCHEMA["paths"][path][method]


def _query_parameters(path: str, method: str = "get") -> dict[str, dict]:
    return {
        parameter["name"]: parameter["schema"]
        for parameter in _operation(path, method).get("parameters", [])
        if parameter["in"] == "query"
    }


def _request_components() -> dict[str, dict]:
    """Every component used as a JSON request body."""
    names = set()
    for operations in RAW_SCHEMA["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                ref = media.get("schema", {}).get("$ref", "")
                if ref:
                    names.add(ref.rsplit("/", 1)[-1])
    return {name: RAW_SCHEMA["components"]["schemas"][name] for name in sorted(names)}


def test_schema_documents_the_record_window_filters():
    parameters = _query_parameters(RECORDS_PATH + "filter/")
    assert {
        "start_timestamp",
        "end_timestamp",
        "experiment_names",
        "season_names",
        "site_names",
        "dataset_names",
    } <= set(parameters)
    assert parameters["start_timestamp"].get("format") == "date-time"
    assert parameters["site_names"].get("type") == "array"


def test_schema_documents_record_stream_name_filters_as_names():
    parameters = _query_parameters(RECORDS_PATH)
    for name in ("experiment_name", "season_name", "site_name", "dataset_name"):
        assert parameters[name] == {"type": "string", "minLength": 1, "maxLength": 255} or (
            parameters[name].get("type") == "string" and "format" not in parameters[name]
        ), (name, parameters[name])


def test_schema_documents_only_paging_on_model_experiments():
    assert _query_parameters("/api/models/id/{id}/experiments/") == {
        "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
        "offset": {"type": "integer", "minimum": 0},
    }


def test_schema_documents_the_bulk_ingest_answer():
    content = _operation(RECORDS_PATH, "post")["responses"]["200"]["content"]["application/json"]
    text = json.dumps(content["schema"])
    assert "IngestResult" in text


def test_schema_request_bodies_forbid_unknown_fields():
    for name, component in _request_components().items():
        if component.get("type") == "object":
            assert component.get("additionalProperties") is False, name


def test_schema_name_query_parameters_have_their_length_limits():
    for path, operations in RAW_SCHEMA["paths"].items():
        if "get" not in operations:
            continue
        for name, parameter in _query_parameters(path).items():
            if name.endswith("_name") and parameter.get("type") == "string":
                assert parameter.get("minLength") == 1, (path, name, parameter)
                assert parameter.get("maxLength") == 255, (path, name, parameter)


def test_the_schema_offers_every_record_body_type():
    """The record post is fuzzed with every body (the operations themselves are listed
    from the schema, so a new endpoint is fuzzed without anyone adding it here)."""
    operations = [
        (method.upper(), path)
        for path, methods in RAW_SCHEMA["paths"].items()
        for method in methods
        if method in {"get", "post", "patch", "delete", "put"}
    ]
    assert ("POST", RECORDS_PATH) in operations
    content = _operation(RECORDS_PATH, "post")["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data", *BULK_BODIES}
