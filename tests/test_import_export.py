"""``manage.py import_records`` and ``manage.py export_records``: the operator's bulk paths.

The commands run against the real database and real files. Imports are checked like the bulk
endpoint's bodies; exports are compared with what the API's streams answer for the same filters.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import re
import select
import time

import orjson
import pytest
from django.core.management import CommandError, call_command

from models_api.models import Dataset, MLModel, Site
from records.models import ModelRecord
from records.representation import RECORD_FIELDS
from tests.conftest import record_body
from tests.factories import ModelRecordFactory
from tests.helpers import peak_memory

pytestmark = pytest.mark.django_db
UTC = datetime.UTC

INPUT_COLUMNS = [
    "timestamp", "model_data", "experiment_name", "season_name", "site_name",
    "collection_date", "dataset_name", "record_info",
]
JSON_COLUMNS = {"model_data", "record_info"}
#: What the server assigns: left out when comparing records across an export and an import.
ASSIGNED = {"id", "created_at", "updated_at"}
SUMMARY = re.compile(
    r"^created (\d+), skipped_existing (\d+), [\d.]+ seconds, [\d,]+ records/second$", re.M
)


# --- helpers ---------------------------------------------------------------------------------


def run(*args, **options) -> tuple[str, str]:
    """Run a command; its (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def imported(*args, **options) -> tuple[int, int]:
    """Run ``import_records``; (created, skipped_existing) from its summary line."""
    out, _ = run("import_records", *args, **options)
    created, skipped = SUMMARY.search(out).groups()
    return int(created), int(skipped)


def nth(n: int, **overrides) -> dict:
    """The n-th of a series of valid records for the demo catalogue (a second apart)."""
    return record_body(**{"timestamp": f"2024-06-01T10:{n // 60:02d}:{n % 60:02d}Z", **overrides})


def ndjson_text(records: list[dict]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def csv_text(records: list[dict], columns: list[str] = INPUT_COLUMNS) -> str:
    """Records as CSV; a field a record does not give is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for record in records:
        writer.writerow([
            "" if name not in record
            else json.dumps(record[name]) if name in JSON_COLUMNS
            else record[name]
            for name in columns
        ])
    return buffer.getvalue()


def write_records(tmp_path, file_format: str, records: list[dict]):
    path = tmp_path / f"records.{file_format}"
    path.write_text(ndjson_text(records) if file_format == "ndjson" else csv_text(records))
    return path


def read_ndjson(path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def without(keys: set[str], rows: list[dict]) -> list[dict]:
    """The rows without ``keys``, in a canonical order (ids, which break ties, differ)."""
    kept = [{name: value for name, value in row.items() if name not in keys} for row in rows]
    return sorted(kept, key=lambda row: json.dumps(row, sort_keys=True))


def stream(api, model, path: str, params: dict) -> bytes:
    response = api.get(f"/api/models/id/{model.id}/{path}", params)
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


FORMATS = [pytest.param("ndjson", id="ndjson"), pytest.param("csv", id="csv")]


# --- import: what gets written ---------------------------------------------------------------


@pytest.mark.parametrize("file_format", FORMATS)
def test_import_applies_defaults_creates_datasets_and_links(demo, tmp_path, file_format):
    path = write_records(tmp_path, file_format, [
        nth(0, site_name="Site B2"),
        nth(1, dataset_name="Imported data", collection_date="2024-05-01", record_info={"x": 1}),
        nth(2, model_data=["a", "list", 3]),
    ])
    assert imported("Model A", str(path)) == (3, 0)

    default = Dataset.objects.get(dataset_name="Model A Dataset 2024-06-01")
    named = Dataset.objects.get(dataset_name="Imported data")
    assert named.collection_date == datetime.date(2024, 5, 1)
    assert set(demo.datasets.all()) == {default, named}
    assert default.experiments.filter(experiment_name="Experiment A").exists()
    assert Site.objects.get(site_name="Site B2").experiments.filter(
        experiment_name="Experiment A"
    ).exists()
    record = ModelRecord.objects.get(dataset=named)
    assert record.record_info == {"x": 1}
    assert record.timestamp == datetime.datetime(2024, 6, 1, 10, 0, 1, tzinfo=UTC)
    first = ModelRecord.objects.get(site__site_name="Site B2")
    assert (first.collection_date, first.record_info) == (datetime.date(2024, 6, 1), {})
    assert first.model_data == {"boxes": [[1, 2, 3, 4]], "label": "weed"}
    assert ModelRecord.objects.get(timestamp__second=2).model_data == ["a", "list", 3]


@pytest.mark.parametrize("file_format", FORMATS)
def test_importing_twice_skips_what_exists_and_repeats_within_the_file(demo, tmp_path, file_format):
    path = write_records(tmp_path, file_format, [nth(0), nth(1), nth(1)])
    assert imported("Model A", str(path)) == (2, 1)
    assert imported("Model A", str(path)) == (0, 3)
    assert ModelRecord.objects.count() == 2


@pytest.mark.parametrize(
    "name, file_format",
    [
        pytest.param("records.jsonl", None, id="jsonl"),
        pytest.param("records.json", None, id="json"),
        pytest.param("records.NDJSON", None, id="upper-case-extension"),
        pytest.param("records.txt", "ndjson", id="format-option"),
    ],
)
def test_the_format_comes_from_the_extension_or_the_option(demo, tmp_path, name, file_format):
    path = tmp_path / name
    path.write_text(ndjson_text([nth(0)]))
    options = ["--format", file_format] if file_format else []
    assert imported("Model A", str(path), *options) == (1, 0)


def test_csv_read_with_the_format_option_whatever_the_extension(demo, tmp_path):
    path = tmp_path / "records.txt"
    path.write_text(csv_text([nth(0)]))
    assert imported("Model A", str(path), "--format", "csv") == (1, 0)


def test_an_unknown_extension_needs_the_format_option(demo, tmp_path):
    path = tmp_path / "records.data"
    path.write_text(ndjson_text([nth(0)]))
    with pytest.raises(CommandError, match="--format"):
        run("import_records", "Model A", str(path))


def test_the_model_is_named_or_given_by_id(demo, tmp_path):
    path = write_records(tmp_path, "ndjson", [nth(0)])
    model_b = MLModel.objects.get(model_name="Model B")
    assert imported(str(model_b.id), str(path)) == (1, 0)
    assert ModelRecord.objects.get().model == model_b


@pytest.mark.parametrize(
    "command",
    [pytest.param("import_records", id="import"), pytest.param("export_records", id="export")],
)
@pytest.mark.parametrize(
    "model",
    [
        pytest.param("Model Z", id="unknown-name"),
        pytest.param("7d7a0b8e-2f0e-4c55-9b1e-6a4f3a1c2d3e", id="unknown-id"),
    ],
)
def test_an_unknown_model_is_a_command_error(demo, tmp_path, command, model):
    path = write_records(tmp_path, "ndjson", [nth(0)])
    args = [str(path)] if command == "import_records" else ["-o", str(tmp_path / "out.ndjson")]
    with pytest.raises(CommandError, match=f"No model is named or has the id '{model}'"):
        run(command, model, *args)


def test_standard_input_is_read_as_ndjson(demo):
    stdin = io.BytesIO(ndjson_text([nth(0), nth(1)]).encode())
    assert imported("Model A", "-", stdin=stdin) == (2, 0)


def test_standard_input_is_read_as_csv_with_the_format_option(demo):
    stdin = io.BytesIO(csv_text([nth(0), nth(1)]).encode())
    assert imported("Model A", "-", "--format", "csv", stdin=stdin) == (2, 0)


def test_a_missing_file_is_a_command_error(demo, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run("import_records", "Model A", str(tmp_path / "nowhere.ndjson"))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("\n\n", id="blank-lines"),
    ],
)
def test_a_file_without_records_is_a_command_error(demo, tmp_path, text):
    path = tmp_path / "records.ndjson"
    path.write_text(text)
    with pytest.raises(CommandError, match="holds no records"):
        run("import_records", "Model A", str(path))


# --- import: bad lines -----------------------------------------------------------------------


def test_bad_ndjson_lines_are_reported_by_number_and_nothing_is_written(demo, tmp_path):
    lines = [json.dumps(nth(n)) for n in range(8)]
    lines[2] = "{not json"
    lines[5] = json.dumps(nth(5, site_name="Site Z"))
    lines[7] = json.dumps({"timestamp": "2024-06-01T10:00:00Z"})
    path = tmp_path / "records.ndjson"
    path.write_text("\n".join(lines))

    with pytest.raises(CommandError) as raised:
        run("import_records", "Model A", str(path))

    message = str(raised.value)
    assert message.startswith("3 lines are invalid; nothing was written.")
    assert set(re.findall(r"^  line (\d+):", message, re.M)) == {"3", "6", "8"}
    assert re.search(r"^  line 6: site_name: No site is named 'Site Z'\.$", message, re.M)
    assert re.search(r"^  line 8: model_data: This field is required\.$", message, re.M)
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.exists()


def test_bad_csv_rows_are_reported_by_file_line_and_nothing_is_written(demo, tmp_path):
    text = csv_text([nth(0), nth(1, site_name="Site Z"), nth(2, dataset_name="New data")])
    text += "2024-06-01T11:00:00Z,{not json,Experiment A,Season 1A,Site A1,,,\n"
    text += "2024-06-01T11:00:01Z,1,Experiment A,Season 1A,Site A1\n"  # too few cells
    text += 'June,1,Experiment A,Season 1A,Site A1,,,"[1]"\n'
    text += '2024-06-01T11:00:02Z,"{""multi"":\n""line""}",Experiment A,Season 1A,,,,\n'
    path = tmp_path / "records.csv"
    path.write_text(text)

    with pytest.raises(CommandError) as raised:
        run("import_records", "Model A", str(path))

    errors = {}
    for number, message in re.findall(r"^  line (\d+): (.*)$", str(raised.value), re.M):
        errors.setdefault(int(number), []).append(message)
    # The header is line 1; the last row starts on line 8 and spans two.
    assert sorted(errors) == [3, 5, 6, 7, 8]
    assert errors[3] == ["site_name: No site is named 'Site Z'."]
    assert errors[5][0].startswith("model_data: Invalid JSON")
    assert errors[6] == ["The row has 5 cells; the header names 8 columns."]
    assert {message.split(":")[0] for message in errors[7]} == {"timestamp", "record_info"}
    assert errors[8] == ["site_name: This field is required."]
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    "columns, complaint",
    [
        pytest.param([*INPUT_COLUMNS, "site"], "unknown columns 'site'", id="unknown"),
        pytest.param(
            [*INPUT_COLUMNS, "model_data"], "repeated columns 'model_data'", id="repeated"
        ),
        pytest.param(INPUT_COLUMNS[1:], "missing columns 'timestamp'", id="missing-required"),
    ],
)
def test_a_bad_csv_header_is_refused_before_any_row_is_read(demo, tmp_path, columns, complaint):
    path = tmp_path / "records.csv"
    # The rows are bad too, but only the header is reported.
    path.write_text(",".join(columns) + "\nnot,a,record\n")
    with pytest.raises(CommandError, match=f"The CSV header has .*{complaint}.*nothing was read"):
        run("import_records", "Model A", str(path))
    assert not ModelRecord.objects.exists()


def test_a_csv_row_naming_a_file_is_refused_rather_than_imported_without_it(demo, tmp_path):
    rows = [nth(0), {**nth(1), "record_file": ""}, {**nth(2), "record_file": "model_records/x.jpg"}]
    path = tmp_path / "records.csv"
    path.write_text(csv_text(rows, [*INPUT_COLUMNS, "record_file"]))
    with pytest.raises(CommandError, match=r"line 4: record_file: Files cannot be imported"):
        run("import_records", "Model A", str(path))
    assert not ModelRecord.objects.exists()


# --- import: batches -------------------------------------------------------------------------


def test_batches_commit_until_the_first_that_fails(demo, tmp_path):
    records = [nth(n) for n in range(10)]
    records[6] = nth(6, season_name="Season 9Z")
    path = write_records(tmp_path, "ndjson", records)

    with pytest.raises(CommandError) as raised:
        run("import_records", "Model A", str(path), "--batch-size", "4")

    message = str(raised.value)
    assert message.startswith(
        "Batch 2 (lines 5 to 8) failed and was not written; later lines were not read. "
        "Committed before it: batch 1 (lines 1 to 4), created 4, skipped_existing 0."
    )
    assert "  line 7: season_name: No season is named 'Season 9Z'" in message
    assert sorted(ModelRecord.objects.values_list("timestamp__second", flat=True)) == [0, 1, 2, 3]


def test_a_failed_batched_import_can_be_run_again_once_fixed(demo, tmp_path):
    records = [nth(n) for n in range(10)]
    path = write_records(tmp_path, "ndjson", [*records[:8], nth(8, site_name="Site Z"), records[9]])
    with pytest.raises(CommandError, match=r"Committed before it: batches 1 to 2 \(lines 1 to 6\)"):
        run("import_records", "Model A", str(path), "--batch-size", "3")
    assert ModelRecord.objects.count() == 6

    path = write_records(tmp_path, "ndjson", records)
    assert imported("Model A", str(path), "--batch-size", "3") == (4, 6)
    assert ModelRecord.objects.count() == 10


@pytest.mark.parametrize("file_format", FORMATS)
def test_batched_import_reports_each_batch_when_verbose(demo, tmp_path, file_format):
    path = write_records(tmp_path, file_format, [nth(n) for n in range(10)])
    out, _ = run("import_records", "Model A", str(path), "--batch-size", "4", "--verbosity", "2")
    first = 1 if file_format == "ndjson" else 2  # a CSV's first record is on line 2
    committed = r"^batch (\d+) \(lines (\d+) to (\d+)\) committed: created (\d+)"
    assert re.findall(committed, out, re.M) == [
        ("1", str(first), str(first + 3), "4"),
        ("2", str(first + 4), str(first + 7), "4"),
        ("3", str(first + 8), str(first + 9), "2"),
    ]
    assert SUMMARY.search(out).groups() == ("10", "0")


def test_the_batch_size_must_be_positive(demo, tmp_path):
    path = write_records(tmp_path, "ndjson", [nth(0)])
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        run("import_records", "Model A", str(path), "--batch-size", "0")


# --- export ----------------------------------------------------------------------------------


@pytest.fixture
def grid(demo):
    """Records of Model A over two days: three times for each site and season of both
    experiments, in the datasets "Data A" and "Data B"."""
    made = []
    for letter in "AB":
        for number in (1, 2, 3):
            site = Site.objects.get(site_name=f"Site {letter}{number}")
            season = site.experiments.get().seasons.get(season_name=f"Season {number}{letter}")
            dataset, _ = Dataset.objects.get_or_create(dataset_name=f"Data {letter}")
            for hour in (0, 12, 30):
                made.append(ModelRecordFactory(
                    model=demo, experiment=season.experiment, season=season, site=site,
                    dataset=dataset,
                    timestamp=datetime.datetime(2024, 6, 1, tzinfo=UTC)
                    + datetime.timedelta(hours=hour, minutes=number),
                ))
    return demo, made


def test_an_ndjson_export_is_the_api_stream_byte_for_byte(api, grid, tmp_path):
    model, made = grid
    ModelRecordFactory()  # another model's record stays out
    path = tmp_path / "export.ndjson"
    _, err = run("export_records", "Model A", "-o", str(path))
    assert path.read_bytes() == stream(api, model, "records", {})
    assert len(read_ndjson(path)) == len(made)
    assert re.match(r"^exported 18 records, [\d.]+ seconds, [\d,]+ records/second$", err)


EXACT_FILTERS = [
    pytest.param({"experiment_name": "Experiment B"}, 9, id="experiment"),
    pytest.param({"season_name": "Season 2A"}, 3, id="season"),
    pytest.param({"site_name": "Site B3"}, 3, id="site"),
    pytest.param({"dataset_name": "Data A"}, 9, id="dataset"),
    pytest.param({"dataset_name": "No such data"}, 0, id="unknown-dataset-matches-nothing"),
    pytest.param({"collection_date": "2024-06-02"}, 6, id="collection-date"),
    pytest.param(
        {"experiment_name": "Experiment A", "site_name": "Site A2",
         "collection_date": "2024-06-01"},
        2, id="combined",
    ),
]
WINDOW_FILTERS = [
    pytest.param({"start_timestamp": "2024-06-01T12:02:00Z"}, 10, id="start-inclusive"),
    pytest.param({"end_timestamp": "2024-06-01T12:02:00Z"}, 10, id="end-inclusive"),
    pytest.param(
        {"start_timestamp": "2024-06-01T14:00:00+02:00", "end_timestamp": "2024-06-01T12:01:59"},
        2, id="window-with-zones-and-naive-utc",
    ),
    pytest.param({"experiment_names": ["Experiment A"]}, 9, id="one-experiment"),
    pytest.param({"season_names": ["Season 1A", "Season 3B"]}, 6, id="repeated-seasons"),
    pytest.param({"site_names": ["Site A1", "Site B2"]}, 6, id="repeated-sites"),
    pytest.param({"dataset_names": ["Data B", "nothing"]}, 9, id="datasets"),
    pytest.param(
        {"start_timestamp": "2024-06-01T12:00:00Z", "site_names": ["Site A3"],
         "season_names": ["Season 3A"], "dataset_names": ["Data A"]},
        2, id="combined",
    ),
]


def as_options(filters: dict) -> list[str]:
    options = []
    for name, value in filters.items():
        for item in value if isinstance(value, list) else [value]:
            options += [f"--{name.replace('_', '-')}", item]
    return options


@pytest.mark.parametrize("filters, count", EXACT_FILTERS)
def test_exact_filters_export_what_the_records_stream_gives(api, grid, tmp_path, filters, count):
    model, _ = grid
    path = tmp_path / "export.ndjson"
    run("export_records", "Model A", "-o", str(path), *as_options(filters))
    assert path.read_bytes() == stream(api, model, "records", filters)
    assert len(read_ndjson(path)) == count


@pytest.mark.parametrize("filters, count", WINDOW_FILTERS)
def test_window_filters_export_what_the_filter_stream_gives(api, grid, tmp_path, filters, count):
    model, _ = grid
    path = tmp_path / "export.ndjson"
    run("export_records", str(model.id), "-o", str(path), *as_options(filters))
    assert path.read_bytes() == stream(api, model, "records/filter", filters)
    assert len(read_ndjson(path)) == count


def test_exact_and_window_filters_combine(grid, tmp_path):
    path = tmp_path / "export.ndjson"
    run("export_records", "Model A", "-o", str(path), "--collection-date", "2024-06-01",
        "--site-names", "Site A1", "--site-names", "Site B1")
    assert {(line["site_name"], line["collection_date"]) for line in read_ndjson(path)} == {
        ("Site A1", "2024-06-01"), ("Site B1", "2024-06-01"),
    }
    assert len(read_ndjson(path)) == 4


@pytest.mark.parametrize(
    "options, complaint",
    [
        pytest.param(["--start-timestamp", "yesterday"], "--start-timestamp: ", id="bad-start"),
        pytest.param(
            ["--end-timestamp", "2024-13-01T00:00:00Z"], "--end-timestamp: ", id="bad-end"
        ),
        pytest.param(
            ["--start-timestamp", "2024-06-02T00:00:00Z",
             "--end-timestamp", "2024-06-01T00:00:00Z"],
            "--start-timestamp: start_timestamp is after end_timestamp.", id="start-after-end",
        ),
        pytest.param(["--collection-date", "June"], "--collection-date: ", id="bad-date"),
        pytest.param(
            ["--site-name", ""], "--site-name: This query parameter may not be empty.", id="empty"
        ),
        pytest.param(
            ["--site-name", "x" * 300], "--site-name: Names are at most 255", id="too-long"
        ),
    ],
)
def test_invalid_filters_are_command_errors_and_write_nothing(grid, tmp_path, options, complaint):
    path = tmp_path / "export.ndjson"
    with pytest.raises(CommandError) as raised:
        run("export_records", "Model A", "-o", str(path), *options)
    assert str(raised.value).startswith("Invalid filter: ")
    assert complaint in str(raised.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(["--site-names", "Site Z"], id="unknown-site"),
        pytest.param(["--season-names", "Season 9Z"], id="unknown-season"),
        pytest.param(["--experiment-name", "Experiment Z"], id="unknown-experiment"),
    ],
)
def test_a_filter_naming_what_does_not_exist_exports_nothing(grid, tmp_path, options):
    """As the streams answer: an empty result, not an error."""
    path = tmp_path / "export.ndjson"
    run("export_records", "Model A", "-o", str(path), *options)
    assert path.read_bytes() == b""


@pytest.mark.parametrize(
    "output", [pytest.param([], id="no-output"), pytest.param(["-o", "-"], id="dash")]
)
def test_export_to_standard_output(api, grid, output):
    model, _ = grid
    out, err = run("export_records", "Model A", "--site-name", "Site A1", *output)
    assert out.encode() == stream(api, model, "records", {"site_name": "Site A1"})
    assert "exported 3 records" in err


def test_csv_export_has_the_record_objects_fields_with_json_as_text(api, grid, tmp_path):
    model, made = grid
    record = made[0]
    record.model_data = {"text": 'a "quoted", comma\nand a line', "n": [1.5, None, True]}
    record.record_info = {"ü": "ñ"}
    record.save()
    path = tmp_path / "export.csv"
    run("export_records", "Model A", "-o", str(path))

    rows = read_csv(path)
    assert list(rows[0]) == list(RECORD_FIELDS)
    streamed = [json.loads(line) for line in stream(api, model, "records", {}).splitlines()]
    assert len(rows) == len(streamed) == 18
    for row, line in zip(rows, streamed, strict=True):
        for name in RECORD_FIELDS:
            if name in JSON_COLUMNS:
                assert json.loads(row[name]) == line[name]
            else:
                assert row[name] == ("" if line[name] is None else line[name])


def test_csv_export_to_standard_output_with_the_format_option(grid):
    out, _ = run("export_records", "Model A", "--format", "csv", "--site-name", "Site B1")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["site_name"] for row in rows] == ["Site B1"] * 3


def test_an_unknown_output_extension_needs_the_format_option(grid, tmp_path):
    with pytest.raises(CommandError, match="--format"):
        run("export_records", "Model A", "-o", str(tmp_path / "export.data"))
    run("export_records", "Model A", "-o", str(tmp_path / "export.data"), "--format", "csv")
    assert len(read_csv(tmp_path / "export.data")) == 18


def test_an_unwritable_output_is_a_command_error(grid, tmp_path):
    with pytest.raises(CommandError, match="Cannot write"):
        run("export_records", "Model A", "-o", str(tmp_path / "no" / "such" / "dir.ndjson"))


def test_an_export_with_no_match_is_an_empty_file(grid, tmp_path):
    path = tmp_path / "export.ndjson"
    run("export_records", "Model A", "-o", str(path), "--start-timestamp", "2030-01-01T00:00:00Z")
    assert path.read_bytes() == b""
    run("export_records", "Model A", "-o", str(tmp_path / "export.csv"), "--dataset-name", "none")
    assert (tmp_path / "export.csv").read_text() == ",".join(RECORD_FIELDS) + "\n"


# --- round trips -----------------------------------------------------------------------------


@pytest.fixture
def varied(demo):
    """Records that test a CSV's quoting and JSON's range: odd names, JSON of every kind,
    microseconds, explicit collection dates."""
    site = Site.objects.create(site_name='Site, "quoted"\nand ü')
    bodies = [
        nth(0, model_data={"text": 'a "quoted", comma\r\nand a line', "n": [1.5, None, True, -3]}),
        nth(1, model_data="just text", record_info={"ü": "ñ", "nested": {"a": []}}),
        nth(2, model_data={"big": 123456789012345678901234567890, "small": 1e-7},
            dataset_name="Data, with comma", collection_date="2023-12-31"),
        nth(3, model_data=[], site_name=site.site_name),
        nth(4, model_data=False, timestamp="2024-06-01T10:00:04.123456Z"),
        nth(5, model_data=0),  # given a file below
    ]
    assert imported("Model A", "-", stdin=io.BytesIO(ndjson_text(bodies).encode())) == (6, 0)
    ModelRecord.objects.filter(timestamp__second=5).update(record_file="model_records/a/b/c.txt")
    return demo


@pytest.mark.parametrize(
    "target, ignore",
    [
        pytest.param("Model A", ASSIGNED, id="same-model-after-deleting"),
        pytest.param("Model B", ASSIGNED | {"model_id", "model_name"}, id="another-model"),
    ],
)
def test_a_csv_export_imports_back_to_the_same_records(varied, tmp_path, target, ignore):
    before = tmp_path / "before.csv"
    run("export_records", "Model A", "-o", str(before), "--end-timestamp", "2024-06-01T10:00:04.5Z")
    if target == "Model A":
        ModelRecord.objects.all().delete()

    assert imported(target, str(before)) == (5, 0)

    after = tmp_path / "after.csv"
    run("export_records", target, "-o", str(after))
    assert without(ignore, read_csv(after)) == without(ignore, read_csv(before))
    assert len(read_csv(after)) == 5
    big = {"big": 123456789012345678901234567890, "small": 1e-7}  # every digit kept
    assert big in [json.loads(row["model_data"]) for row in read_csv(after)]


def test_an_exported_record_with_a_file_is_not_imported_without_it(varied, tmp_path):
    path = tmp_path / "export.csv"
    run("export_records", "Model A", "-o", str(path))
    with pytest.raises(CommandError, match=r"line 8: record_file: Files cannot be imported"):
        run("import_records", "Model B", str(path))
    assert not ModelRecord.objects.filter(model__model_name="Model B").exists()


def test_a_progress_bar_is_drawn_on_a_terminal_only(demo, tmp_path):
    path = write_records(tmp_path, "ndjson", [nth(n) for n in range(5)])
    _, err = run("import_records", "Model A", str(path))
    assert err == ""

    master, replica = os.openpty()
    try:
        with open(replica, "w", encoding="utf-8") as terminal:
            call_command("import_records", "Model B", str(path),
                         stdout=io.StringIO(), stderr=terminal)
            call_command("export_records", "Model B", "-o", str(tmp_path / "out.csv"),
                         stdout=io.StringIO(), stderr=terminal)
        drawn = b""
        while select.select([master], [], [], 0.2)[0]:
            try:
                drawn += os.read(master, 65536)
            except OSError:  # the terminal's other end is closed: all was read
                break
    finally:
        os.close(master)
    text = drawn.decode()
    assert "\r5 lines [" in text  # the import counts lines (their number is not known)
    assert "| 5/5 [" in text  # the export counts records against the total
    assert "exported 5 records" in text


def write_series(path, count: int) -> None:
    """``count`` records a second apart from 2024-01-01, over three sites and seasons, as
    NDJSON (written with orjson: the test's own work should not dominate its time)."""
    start = datetime.datetime(2024, 1, 1, tzinfo=UTC)
    with open(path, "wb") as stream_:
        for n in range(count):
            stream_.write(orjson.dumps({
                "timestamp": start + datetime.timedelta(seconds=n),
                "model_data": {"score": n / 7, "label": f"plant {n}", "boxes": [[n, 1, 2, 3]]},
                "experiment_name": "Experiment A",
                "season_name": f"Season {n % 3 + 1}A",
                "site_name": f"Site A{n % 3 + 1}",
                **({"record_info": {"n": n}} if n % 2 else {}),
            }, option=orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE))


@pytest.mark.slow
def test_a_hundred_thousand_records_round_trip(demo, tmp_path):
    """Import 100,000 NDJSON lines, export them again: the same records, in stream order."""
    count = 100_000
    source = tmp_path / "source.ndjson"
    write_series(source, count)

    started = time.perf_counter()
    assert imported("Model A", str(source)) == (count, 0)
    import_seconds = time.perf_counter() - started
    exported = tmp_path / "exported.ndjson"
    started = time.perf_counter()
    run("export_records", "Model A", "-o", str(exported))
    export_seconds = time.perf_counter() - started

    with open(source, "rb") as given, open(exported, "rb") as got:
        for number, (line, out) in enumerate(zip(given, got, strict=True), start=1):
            sent, record = orjson.loads(line), orjson.loads(out)
            expected = {
                "collection_date": sent["timestamp"][:10],
                "dataset_name": f"Model A Dataset {sent['timestamp'][:10]}",
                "record_info": {},
                "model_name": "Model A",
                "record_file": None,
                **sent,
            }
            assert {name: record[name] for name in expected} == expected, number
    print(f"\n100k: import {count / import_seconds:,.0f}/s, export {count / export_seconds:,.0f}/s")


def peak_memory_of(*args) -> int:
    """The peak of memory allocated by Python and Arrow while a command runs."""
    with peak_memory() as peak:
        run(*args)
    return peak.bytes


@pytest.mark.slow
def test_csv_export_memory_stays_flat_however_many_records_match(demo, tmp_path, small_batches):
    """The conversion to CSV holds a chunk at a time (NDJSON is the stream's renderer, whose
    memory test_record_streams checks)."""
    source = tmp_path / "source.ndjson"
    write_series(source, 15_000)
    assert imported("Model A", str(source)) == (15_000, 0)
    output = tmp_path / "export.csv"
    first_4000 = ["--end-timestamp", "2024-01-01T01:06:39Z"]
    run("export_records", "Model A", "-o", str(output), *first_4000)  # modules loaded, caches warm

    # More records than one fetch from the database (2,000 on SQLite) in each case.
    small = peak_memory_of("export_records", "Model A", "-o", str(output), *first_4000)
    assert len(output.read_text().splitlines()) == 1 + 4_000
    large = peak_memory_of("export_records", "Model A", "-o", str(output))
    assert len(output.read_text().splitlines()) == 1 + 15_000
    # Almost four times the records, about the same peak: nothing grows with their number.
    assert large < small * 1.2 + 256 * 1024, (small, large)


def test_an_ndjson_export_imports_as_it_is(demo, tmp_path):
    """Export lines carry ids, names and times; the import ignores them (and a null file)."""
    from records.models import ModelRecord

    source = tmp_path / "in.ndjson"
    source.write_text(
        "\n".join(
            json.dumps(record_body(timestamp=f"2024-06-01T10:00:0{n}Z", record_info={"n": n}))
            for n in range(5)
        )
    )
    call_command(
        "import_records", "Model A", str(source), stdout=io.StringIO(), stderr=io.StringIO()
    )
    exported = tmp_path / "out.ndjson"
    call_command(
        "export_records",
        "Model A",
        "-o",
        str(exported),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    ModelRecord.objects.all().delete()
    call_command(
        "import_records", "Model A", str(exported), stdout=io.StringIO(), stderr=io.StringIO()
    )
    again = tmp_path / "again.ndjson"
    call_command(
        "export_records",
        "Model A",
        "-o",
        str(again),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )

    def content(path):
        keep = ("timestamp", "collection_date", "model_data", "dataset_name", "experiment_name",
                "season_name", "site_name", "record_info", "record_file")
        return [{k: v for k, v in json.loads(line).items() if k in keep}
                for line in path.read_text().splitlines()]

    assert len(content(again)) == 5
    assert content(again) == content(exported)


@pytest.mark.parametrize(
    "fault, message",
    [
        pytest.param(b'2024-06-02T10:00:00Z,"{}"x,E,S,X', "The line is not valid CSV", id="csv"),
        pytest.param(b"2024-06-02T10:00:00Z,\xff,E,S,X",
                     "The file is not valid UTF-8 from this line on.", id="utf-8"),
    ],
)
def test_a_csv_file_broken_after_its_first_lines_is_refused_naming_where(
    demo, tmp_path, fault, message
):
    text = csv_text([nth(n) for n in range(300)]).encode() + fault + b"\n"
    path = tmp_path / "records.csv"
    path.write_bytes(text)
    with pytest.raises(CommandError) as raised:
        run("import_records", "Model A", str(path))
    ((number, found),) = re.findall(r"^  line (\d+): (.*)$", str(raised.value), re.M)
    assert found.startswith(message)
    assert int(number) == 302 if "CSV" in message else 1 < int(number) <= 302
    assert not ModelRecord.objects.exists()
