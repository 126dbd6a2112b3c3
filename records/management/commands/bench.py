"""``manage.py bench``: rerunnable figures for the record paths on PostgreSQL.

See :mod:`records.benchmark` for what is measured and against what. ``make bench`` runs it
against a database of its own (``models_api_bench``), so no real data is touched.
"""

from __future__ import annotations

import datetime
import io
import statistics
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from models_api.models import Experiment, MLModel, Season, Site
from records import benchmark as b
from records.models import ModelRecord
from records.partitioning import Layout, current_layout, rebuild

#: The formats of the streams, each measured.
STREAM_FORMATS = ("ndjson", "arrow", "csv", "parquet")
#: The sections of the bench, in the order they run (``--sections`` picks some).
SECTIONS = ("ingest", "stream", "filter", "posts", "partitions")
#: The formats of bulk bodies and imported files, each measured.
INGEST_FORMATS = ("ndjson", "arrow", "csv", "parquet")
TARGETS = {
    "stream_ratio": 0.9,
    "stream_memory_growth_mb": 20,
    "ingest_ratio": 0.85,
    "filter_first_byte_ms": 50,
    "post_records_per_second": 300,
}


class Command(BaseCommand):
    help = "Benchmark ingest, streams, a selective filter and concurrent posts (PostgreSQL)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--records", type=int, default=1_000_000, help="records to load (N)")
        parser.add_argument(
            "--body-lines", type=int, default=100_000, help="lines per bulk request"
        )
        parser.add_argument("--clients", type=int, default=8, help="concurrent posting clients")
        parser.add_argument("--seconds", type=float, default=20, help="seconds of concurrent posts")
        parser.add_argument("--filter-runs", type=int, default=20)
        parser.add_argument("--keep", action="store_true", help="keep the bench records afterwards")
        parser.add_argument(
            "--partitions", type=int, default=8,
            help="hash partitions compared with the plain table (0: skip that section)",
        )
        parser.add_argument(
            "--sections", default=",".join(SECTIONS),
            help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (default: all)",
        )

    def handle(self, *args, **options) -> None:
        if connection.vendor != "postgresql":
            raise CommandError(
                "The benchmark needs PostgreSQL: set DATABASE_URL (make bench does)."
            )
        sections = self.sections(options)
        if not b.may_checkpoint():
            b.log("This database user may not run CHECKPOINT (it needs to be a superuser or "
                  "a member of pg_checkpoint): the loads start vacuumed but not checkpointed.")
        total = options["records"]
        model = self.prepare()
        output = io.StringIO()
        call_command("create_api_user", "bench", stdout=output)
        headers = {"Authorization": f"Token {output.getvalue().strip()}"}
        figures: dict = {
            "records": total,
            "started_at": datetime.datetime.now(b.UTC).isoformat(timespec="seconds"),
            "targets": TARGETS,
            "checkpoints_before_loads": b.may_checkpoint(),
        }
        try:
            with b.Server() as server:
                if "ingest" in sections:
                    figures["ingest"] = self.ingest(
                        server, model, total, options["body_lines"], headers
                    )
                else:
                    self.load_bench_rows(server, model, total, options["body_lines"], headers)
            if "stream" in sections:
                figures["stream"] = self.stream(model, total, headers)
            with b.Server() as server:
                if "filter" in sections:
                    figures["selective_filter"] = self.selective(
                        server, model, headers, options["filter_runs"]
                    )
                if "posts" in sections:
                    b.log("Concurrent single-record posts ...")
                    figures["single_posts"] = b.concurrent_posts(
                        server.port, f"/api/models/id/{model.id}/records", headers,
                        options["clients"], options["seconds"],
                    )
            if "partitions" in sections and options["partitions"]:
                figures["partitions"] = self.partitions(
                    model, total, options["body_lines"], headers, options["partitions"]
                )
        finally:
            b.drop_scratch_table()
            MLModel.objects.filter(model_name__startswith="Bench model (").delete()
            if not options["keep"]:
                b.log("Removing the bench records ...")
                model.delete()
        figures["verdict"] = self.verdict(figures)
        self.write(figures)

    # --- set-up ------------------------------------------------------------------------------

    @staticmethod
    def sections(options: dict) -> set[str]:
        chosen = {name.strip() for name in options["sections"].split(",") if name.strip()}
        if unknown := chosen - set(SECTIONS):
            raise CommandError(f"Unknown bench section(s): {', '.join(sorted(unknown))}; "
                               f"the sections are {', '.join(SECTIONS)}.")
        return chosen

    def prepare(self) -> MLModel:
        b.log("Preparing the bench catalogue ...")
        MLModel.objects.filter(model_name="Bench model").delete()
        experiment, _ = Experiment.objects.get_or_create(experiment_name="Bench experiment")
        Season.objects.get_or_create(experiment=experiment, season_name="Bench season")
        for number in range(b.SITES):
            Site.objects.get_or_create(site_name=f"Bench site {number}")
        return MLModel.objects.create(model_name="Bench model")

    # --- 1. ingest -----------------------------------------------------------------------------

    def ingest(
        self, server: b.Server, model: MLModel, total: int, per_body: int, headers: dict
    ) -> dict:
        """Each body format through the bulk endpoint and each file format through
        ``import_records``, best of two loads each, against a raw COPY of the same rows into a
        table with the same keys, constraints and indexes (best of two, around the loads).

        Every load goes into a fresh model on a record table holding no other rows, compacted
        (``b.settle(compact=True)``): the state of the raw COPY's new scratch table. A table
        that already holds a million rows costs PostgreSQL more per row for the raw COPY and
        the ingest alike, and holding the bench model's rows during some loads and not others
        made the ratios depend on the order of the loads. The bench model's own rows, which
        the later sections read, are loaded afterwards, untimed."""
        figures: dict = {"endpoint": {}, "command": {}, "request_rows": per_body}
        raw_seconds = []
        for name in INGEST_FORMATS:
            bodies = b.bodies(total, per_body, name)  # built before the clock starts
            seconds = []
            for run in (1, 2):
                target = self.fresh_model(f"endpoint {name}")
                b.log(f"Loading {total:,} records through the bulk endpoint as {name} "
                      f"(load {run} of 2) ...")
                seconds.append(self.posted(server, target, bodies, name, headers))
                if not raw_seconds:  # the first load's rows are the raw COPY's too
                    raw_seconds.append(self.raw_copy(target))
                target.delete()
            del bodies
            figures["endpoint"][name] = self.best(total, seconds)
        with tempfile.TemporaryDirectory() as folder:
            for name in INGEST_FORMATS:
                source = b.write_file(Path(folder), total, name)
                seconds = []
                for run in (1, 2):
                    target = self.fresh_model(f"command {name}")
                    b.log(f"Importing {total:,} records from the {name} file with "
                          f"import_records (load {run} of 2) ...")
                    seconds.append(self.imported(target, source))
                    target.delete()
                source.unlink()
                figures["command"][name] = self.best(total, seconds)
        self.load_bench_rows(server, model, total, per_body, headers)
        raw_seconds.append(self.raw_copy(model))
        populated = self.populated(server, model, total, per_body, headers)
        raw_rate = total / min(raw_seconds)
        for way in ("endpoint", "command"):
            for figure in figures[way].values():
                figure["ratio"] = round(figure["records_per_second"] / raw_rate, 3)
        return {
            "raw_copy_records_per_second": round(raw_rate),
            "raw_copy_loads_records_per_second": [round(total / each) for each in raw_seconds],
            "app_records_per_second": figures["endpoint"]["ndjson"]["records_per_second"],
            "ratio": min(figure["ratio"] for figure in figures["endpoint"].values()),
            "command_ratio": min(figure["ratio"] for figure in figures["command"].values()),
            **figures,
            "populated": populated,
        }

    def populated(
        self, server: b.Server, model: MLModel, total: int, per_body: int, headers: dict
    ) -> dict:
        """The same comparison on a record table already holding the bench model's N rows,
        as a table in use does: NDJSON bodies through the endpoint against a raw COPY of the
        same rows (new ids, another model) into the record table itself, best of two each,
        alternated, each load starting from the table compacted with those N rows in it."""
        bodies = b.bodies(total, per_body, "ndjson")
        raw_seconds, seconds = [], []
        for run in (1, 2):
            target = self.fresh_model("populated raw")
            text, columns = b.rows_as_another_models(model.id, target.id)
            b.log(f"Loading {total:,} rows with a raw COPY into the record table beside "
                  f"{total:,} others (load {run} of 2) ...")
            b.settle(compact=True)
            raw_seconds.append(b.raw_copy_in(text, table=ModelRecord._meta.db_table,
                                             columns=columns))
            del text
            target.delete()
            target = self.fresh_model("populated endpoint")
            b.log(f"Loading {total:,} records through the bulk endpoint as ndjson beside "
                  f"{total:,} others (load {run} of 2) ...")
            seconds.append(self.posted(server, target, bodies, "ndjson", headers))
            target.delete()
        raw_rate = total / min(raw_seconds)
        endpoint = self.best(total, seconds)
        return {
            "rows_already_in_table": total,
            "raw_copy_records_per_second": round(raw_rate),
            "raw_copy_loads_records_per_second": [round(total / each) for each in raw_seconds],
            "endpoint_ndjson": endpoint,
            "ratio": round(endpoint["records_per_second"] / raw_rate, 3),
        }

    def load_bench_rows(
        self, server: b.Server, model: MLModel, total: int, per_body: int, headers: dict
    ) -> None:
        """The bench model's rows, which the streams, the filter and the partitions read:
        NDJSON bodies through the bulk endpoint, untimed."""
        b.log(f"Loading the bench model's {total:,} records (untimed) ...")
        self.posted(server, model, b.bodies(total, per_body, "ndjson"), "ndjson", headers)

    @staticmethod
    def posted(
        server: b.Server, target: MLModel, bodies: list[bytes], name: str, headers: dict
    ) -> float:
        """Seconds to post ``bodies`` (format ``name``) to ``target``'s records, one by one."""
        path = f"/api/models/id/{target.id}/records"
        post_headers = {**headers, "Content-Type": b.CONTENT_TYPES[name]}
        b.settle(compact=True)
        started = time.perf_counter()
        for body in bodies:
            status, answer = b.post(server.port, path, body, post_headers)
            if status != 200:
                raise CommandError(f"Bulk ingest ({name}) answered {status}: {answer[:300]!r}")
        return time.perf_counter() - started

    @staticmethod
    def imported(target: MLModel, source: Path) -> float:
        """Seconds to load ``source`` into ``target`` with ``import_records``."""
        b.settle(compact=True)
        started = time.perf_counter()
        call_command("import_records", target.model_name, str(source),
                     stdout=io.StringIO(), stderr=io.StringIO())
        return time.perf_counter() - started

    @staticmethod
    def best(total: int, seconds: list[float]) -> dict:
        return {
            "records_per_second": round(total / min(seconds)),
            "loads_records_per_second": [round(total / each) for each in seconds],
        }

    @staticmethod
    def raw_copy(model: MLModel) -> float:
        b.log("Loading the same rows with a raw COPY into a scratch table ...")
        text = b.rows_as_copy_text(model.id)
        b.create_scratch_table()
        try:
            b.settle()
            return b.raw_copy_in(text)
        finally:
            b.drop_scratch_table()

    @staticmethod
    def fresh_model(purpose: str) -> MLModel:
        name = f"Bench model ({purpose})"
        MLModel.objects.filter(model_name=name).delete()
        return MLModel.objects.create(model_name=name)

    # --- 2. streams ----------------------------------------------------------------------------

    def stream(self, model: MLModel, total: int, headers: dict) -> dict:
        """Each format streamed over HTTP against the raw ``row_to_json`` COPY of the same rows,
        best of two runs each, and the server's peak memory for N records and for N/10."""
        path = f"/api/models/id/{model.id}/records"
        tenth_end = ModelRecord.objects.filter(model=model).order_by("timestamp").values_list(
            "timestamp", flat=True
        )[total // 10 - 1]
        tenth_query = {"end_timestamp": tenth_end.isoformat()}
        raw_seconds = []
        figures: dict = {}
        for name in STREAM_FORMATS:
            b.log(f"Streaming {total:,} records as {name} over HTTP, twice, and N/10 once ...")
            with b.Server() as server:  # a fresh server: its peak is the N/10 stream's
                self.streamed(server, f"{path}/filter", {**tenth_query, "format": name}, headers)
                tenth_peak = server.peak_memory_mb()
            with b.Server() as server:
                seconds = [
                    self.streamed(server, path, {"format": name}, headers) for _ in range(2)
                ]
                peak = server.peak_memory_mb()
            raw_seconds.append(b.raw_copy_out(model.id, expected=total))
            figures[name] = {
                "records_per_second": round(total / min(seconds)),
                "peak_server_memory_mb": {"n": round(peak, 1), "n_over_10": round(tenth_peak, 1)},
                "memory_growth_mb": round(peak - tenth_peak, 1),
            }
        raw_rate = total / min(raw_seconds)
        for name in STREAM_FORMATS:
            figures[name]["ratio"] = round(figures[name]["records_per_second"] / raw_rate, 3)
        return {
            "raw_copy_json_records_per_second": round(raw_rate),
            **figures,
            "ratio": figures["ndjson"]["ratio"],
            "memory_growth_mb": max(figures[name]["memory_growth_mb"] for name in STREAM_FORMATS),
        }

    @staticmethod
    def streamed(server: b.Server, path: str, query: dict, headers: dict) -> float:
        status, _, seconds, _ = b.http_get(server.port, path + b.query_string(**query), headers)
        if status != 200:
            raise CommandError(f"The stream {path} answered {status}.")
        return seconds

    # --- 3. selective filter -------------------------------------------------------------------

    def selective(self, server: b.Server, model: MLModel, headers: dict, runs: int) -> dict:
        b.log("Timing a selective filter (one site of ten, one day) ...")
        first_bytes, totals, counts = [], [], []
        for run in range(runs):
            day = b.START + datetime.timedelta(days=(run * 7) % b.DAYS)
            path = f"/api/models/id/{model.id}/records/filter" + b.query_string(
                site_names=f"Bench site {run % b.SITES}",
                start_timestamp=day.isoformat(),
                end_timestamp=(day + datetime.timedelta(days=1)).isoformat(),
            )
            status, first_byte, total_seconds, size = b.http_get(server.port, path, headers)
            if status != 200:
                raise CommandError(f"The filter answered {status}.")
            first_bytes.append(first_byte * 1000)
            totals.append(total_seconds * 1000)
            counts.append(size)
        return {
            "runs": runs,
            "first_byte_ms_median": round(statistics.median(first_bytes), 1),
            "total_ms_median": round(statistics.median(totals), 1),
            "bytes_median": round(statistics.median(counts)),
        }

    # --- 5. partitions ---------------------------------------------------------------------

    def partitions(
        self, model: MLModel, total: int, per_body: int, headers: dict, count: int
    ) -> dict:
        """A single GET by id, the model's NDJSON stream and a bulk ingest on ``count`` hash
        partitions of the rows, then on the plain table again, in this run.

        Both layouts are measured freshly rebuilt by ``partition_records`` (compact tables,
        new indexes), so that the comparison is of the layouts, not of a table that earlier
        sections have written to against a new one.
        """
        if current_layout() != Layout(0):
            raise CommandError("The bench compares against the plain table: run "
                               "partition_records --plain on the bench database first.")
        ids = b.sample_record_ids(model.id, 200)
        b.log(f"Partitioning the records into {count} ...")
        started = time.perf_counter()
        rebuild(Layout(count))
        partition_seconds = time.perf_counter() - started
        try:
            partitioned = self.layout_figures(model, total, per_body, headers, ids)
        finally:
            b.log("Back to the plain table ...")
            started = time.perf_counter()
            rebuild(Layout(0))
            plain_seconds = time.perf_counter() - started
        plain = self.layout_figures(model, total, per_body, headers, ids)
        return {
            "partitions": count,
            "partition_records_seconds": round(partition_seconds, 1),
            "partition_records_plain_seconds": round(plain_seconds, 1),
            "plain": plain,
            "partitioned": partitioned,
            "ratio": {
                name: round(partitioned[name] / plain[name], 3)
                for name in ("get_by_id_ms", "lookup_by_id_ms", "stream_records_per_second",
                             "ingest_records_per_second")
            },
        }

    def layout_figures(
        self, model: MLModel, total: int, per_body: int, headers: dict, ids: list[str]
    ) -> dict:
        layout = current_layout()
        b.log(f"On {layout}: GET by id, the NDJSON stream, a bulk ingest ...")
        with b.Server() as server:
            b.get_by_id_ms(server.port, ids, headers)  # warm the caches
            get_ms = b.get_by_id_ms(server.port, ids, headers)
            stream_seconds = min(
                self.streamed(server, f"/api/models/id/{model.id}/records", {}, headers)
                for _ in range(2)
            )
            ingest_total = max(1, min(per_body, total // 10))
            MLModel.objects.filter(model_name="Bench partitions model").delete()
            other = MLModel.objects.create(model_name="Bench partitions model")
            try:
                body = next(b.ndjson_bodies(ingest_total, ingest_total))
                started = time.perf_counter()
                status, answer = b.post(
                    server.port, f"/api/models/id/{other.id}/records", body,
                    {**headers, "Content-Type": "application/x-ndjson"},
                )
                ingest_seconds = time.perf_counter() - started
                if status != 200:
                    raise CommandError(f"Bulk ingest answered {status}: {answer[:300]!r}")
            finally:
                other.delete()
        return {
            "get_by_id_ms": round(get_ms, 2),
            "lookup_by_id_ms": round(b.lookup_by_id_ms(ids), 3),
            "tables_visited_by_id": b.tables_visited_by_id(ids[0]),
            "stream_records_per_second": round(total / stream_seconds),
            "ingest_records": ingest_total,
            "ingest_records_per_second": round(ingest_total / ingest_seconds),
        }

    # --- verdict and output ----------------------------------------------------------------------

    @staticmethod
    def verdict(figures: dict) -> dict:
        """Each measured section against its target (``ingest_ratio``: every format, both ways)."""
        checks = {
            "stream": lambda stream: {
                "stream_ratio": stream["ratio"] >= TARGETS["stream_ratio"],
                "arrow_at_least_ndjson": stream["arrow"]["records_per_second"]
                >= stream["ndjson"]["records_per_second"],
                "stream_memory": stream["memory_growth_mb"] <= TARGETS["stream_memory_growth_mb"],
            },
            "ingest": lambda ingest: {
                "ingest_ratio": min(ingest["ratio"], ingest["command_ratio"])
                >= TARGETS["ingest_ratio"],
            },
            "selective_filter": lambda selective: {
                "filter_first_byte": selective["first_byte_ms_median"]
                < TARGETS["filter_first_byte_ms"],
            },
            "single_posts": lambda posts: {
                "single_posts": posts["records_per_second"] >= TARGETS["post_records_per_second"]
                and posts["non_200"] == 0,
            },
        }
        verdict: dict = {}
        for section, check in checks.items():
            if section in figures:
                verdict.update(check(figures[section]))
        return verdict

    def write(self, figures: dict) -> None:
        text = b.to_json(figures)
        folder = Path(settings.VAR_DIR) / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = figures["started_at"].replace(":", "").replace("+0000", "Z")
        path = folder / f"bench-{stamp}.json"
        path.write_text(text + "\n")
        self.stdout.write(text)
        b.log(f"Written to {path}")
