"""The ``models-api`` console script, run as a user runs it: a subprocess with
``MODELS_API_URL`` and ``MODELS_API_TOKEN``, against the live server."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from models_api_client._arrow import RECORD_FIELDS
from models_api_client.cli import main

from tests.client.conftest import record

SCRIPT = Path(sys.executable).with_name("models-api")


def models_api(server, *args: str, token: str | None = None, stdin: bytes | None = None):
    env = {
        **os.environ,
        "MODELS_API_URL": server.url,
        "MODELS_API_TOKEN": token or server.token,
    }
    return subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, input=stdin, timeout=120
    )


@pytest.fixture
def stored(client, server):
    rows = [record(n * 600, site_name=("Site A1", "Site A2")[n % 2],
                   record_info={"n": n} if n % 3 else {}) for n in range(50)]
    rows[5]["model_data"] = "text, with \"quotes\"\nand a newline"
    rows[6]["model_data"] = None
    client.records.add_many(server.model, rows)
    return list(client.records.iter(server.model))


def _comparable(records):
    return [
        (r.timestamp, r.collection_date, r.model_data, r.dataset_name, r.experiment_name,
         r.season_name, r.site_name, r.record_info)
        for r in records
    ]


def test_the_console_script_exports_and_imports_back(server, client, stored, tmp_path):
    target = tmp_path / "records.ndjson"
    exported = models_api(server, "records", "export", str(server.model), "-o", str(target))
    assert exported.returncode == 0, exported.stderr.decode()
    assert len(target.read_bytes().splitlines()) == len(stored)

    imported = models_api(server, "records", "import", str(server.other_model), str(target))
    assert imported.returncode == 0, imported.stderr.decode()
    assert json.loads(imported.stdout) == {"created": len(stored), "skipped_existing": 0}
    assert _comparable(client.records.iter(server.other_model)) == _comparable(stored)


@pytest.fixture
def run_cli(server, monkeypatch, capsys):
    """``models-api`` in this process (the same ``main`` as the console script)."""
    monkeypatch.setenv("MODELS_API_URL", server.url)
    monkeypatch.setenv("MODELS_API_TOKEN", server.token)

    def run(*args: str, token: str | None = None):
        if token:
            monkeypatch.setenv("MODELS_API_TOKEN", token)
        code = main(["--no-progress", *args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.mark.parametrize("extension", ["csv", "arrow", "parquet", "jsonl"])
def test_export_then_import_in_every_format(run_cli, server, client, stored, tmp_path,
                                             extension):
    target = tmp_path / f"records.{extension}"
    code, _, err = run_cli("records", "export", str(server.model), "-o", str(target))
    assert code == 0, err
    code, out, err = run_cli("records", "import", str(server.other_model), str(target))
    assert code == 0, err
    assert json.loads(out) == {"created": len(stored), "skipped_existing": 0}
    assert _comparable(client.records.iter(server.other_model)) == _comparable(stored)
    code, out, _ = run_cli("records", "import", str(server.other_model), str(target),
                           "--batch-size", "7")
    assert json.loads(out) == {"created": 0, "skipped_existing": len(stored)}


def test_a_csv_export_has_the_contracts_columns(run_cli, server, stored, tmp_path):
    target = tmp_path / "records.csv"
    run_cli("records", "export", str(server.model), "-o", str(target), "--site-name", "Site A1")
    rows = list(csv.DictReader(target.open(newline="")))
    assert list(rows[0]) == list(RECORD_FIELDS)
    assert [row["id"] for row in rows] == [str(r.id) for r in stored if r.site_name == "Site A1"]
    assert rows[0]["record_file"] == "" and json.loads(rows[0]["model_data"]) == (
        stored[0].model_data
    )


def test_export_filters_to_standard_output_and_import_from_standard_input(server, client,
                                                                          stored):
    exported = models_api(
        server, "records", "export", str(server.model), "--site-names", "Site A2",
        "--start-timestamp", "2024-06-01T01:00:00Z",
    )
    assert exported.returncode == 0, exported.stderr.decode()
    lines = exported.stdout.splitlines()
    wanted = [r for r in stored
              if r.site_name == "Site A2" and r.timestamp.isoformat() >= "2024-06-01T01:00"]
    assert [json.loads(line)["id"] for line in lines] == [str(r.id) for r in wanted]

    imported = models_api(server, "records", "import", str(server.other_model), "-",
                          "--format", "ndjson", stdin=exported.stdout)
    assert json.loads(imported.stdout)["created"] == len(wanted)


def test_errors_are_one_line_and_a_non_zero_exit(run_cli, server, reader_token, stored,
                                                 tmp_path):
    code, _, err = run_cli("records", "import", str(server.model), str(tmp_path / "x.csv"))
    assert code == 2 and "No such file" in err
    source = tmp_path / "one.ndjson"
    source.write_text(json.dumps(record(99_999)) + "\n")
    code, _, err = run_cli("records", "import", str(server.model), str(source),
                           token=reader_token)
    assert code == 1 and err.startswith("models-api: error: 403: ")
    code, _, err = run_cli("records", "export", str(server.model), "--site-name", "A",
                           "--site-names", "B")
    assert code == 2 and "cannot be mixed" in err
    with pytest.raises(SystemExit, match="--format"):
        run_cli("records", "export", str(server.model), "-o", str(tmp_path / "out.xlsx"))
    assert not (tmp_path / "out.xlsx").exists()


@pytest.fixture
def sent_types(monkeypatch):
    """The Content-Type of each bulk body the client sends."""
    from models_api_client._http import HTTP

    types: list[str] = []
    send = HTTP.send

    def spy(self, method, path, **options):
        if options.get("content_type"):
            types.append(options["content_type"])
        return send(self, method, path, **options)

    monkeypatch.setattr(HTTP, "send", spy)
    return types


@pytest.mark.needs_server_formats("csv_bodies", "parquet_bodies", "arrow_bodies")
@pytest.mark.parametrize("extension", ["csv", "arrows", "parquet", "ndjson"])
def test_an_exported_file_is_imported_in_its_own_format(run_cli, server, client, stored,
                                                        tmp_path, sent_types, extension):
    """The export's own columns (ids, names, times) are dropped: the service assigns them."""
    target = tmp_path / f"records.{extension}"
    code, _, err = run_cli("records", "export", str(server.model), "-o", str(target))
    assert code == 0, err
    sent_types.clear()
    code, out, err = run_cli("records", "import", str(server.other_model), str(target),
                             "--batch-size", "20")
    assert code == 0, err
    assert json.loads(out) == {"created": len(stored), "skipped_existing": 0}
    expected = {"csv": "text/csv", "arrows": "application/vnd.apache.arrow.stream",
                "parquet": "application/vnd.apache.parquet",
                "ndjson": "application/x-ndjson"}[extension]
    assert sent_types == [expected] * 3
    assert _comparable(client.records.iter(server.other_model)) == _comparable(stored)


def test_a_server_without_csv_bodies_gets_ndjson(run_cli, server, client, stored, tmp_path,
                                                 sent_types, monkeypatch):
    """A server from before the formats answers 415 to a CSV body: the file goes as NDJSON."""
    from records.parsers import CSVParser
    from records.views import ModelRecordsViewSet

    monkeypatch.setattr(ModelRecordsViewSet, "parser_classes", [
        parser for parser in ModelRecordsViewSet.parser_classes if parser is not CSVParser
    ])
    target = tmp_path / "records.csv"
    assert run_cli("records", "export", str(server.model), "-o", str(target))[0] == 0
    sent_types.clear()
    code, out, err = run_cli("records", "import", str(server.other_model), str(target),
                             "--batch-size", "20")
    assert code == 0, err
    assert json.loads(out) == {"created": len(stored), "skipped_existing": 0}
    assert sent_types == ["text/csv"] + ["application/x-ndjson"] * 3
    assert _comparable(client.records.iter(server.other_model)) == _comparable(stored)
