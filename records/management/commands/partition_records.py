"""``manage.py partition_records --partitions N``: the record table as N hash partitions on
``model_id`` (``--plain`` turns it back into one table). See :mod:`records.partitioning`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from records.partitioning import Layout, PartitioningError, rebuild


class Command(BaseCommand):
    help = (
        "Store the records as N hash partitions on model_id (PostgreSQL), or as one plain "
        "table again (--plain), in one transaction keeping every row, constraint and index."
    )

    def add_arguments(self, parser) -> None:
        layout = parser.add_mutually_exclusive_group(required=True)
        layout.add_argument("--partitions", type=int, help="the number of hash partitions (2+)")
        layout.add_argument("--plain", action="store_true", help="one table, no partitions")
        parser.add_argument("--database", default="default", help="the database alias")

    def handle(self, *args, **options) -> None:
        partitions = 0 if options["plain"] else options["partitions"]
        if not options["plain"] and partitions < 2:
            raise CommandError("--partitions must be at least 2 (--plain for no partitions).")
        try:
            rebuilt = rebuild(Layout(partitions), using=options["database"])
        except PartitioningError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"The record table was {rebuilt.before} and is now {rebuilt.after}: "
            f"{rebuilt.rows} rows, constraints {', '.join(rebuilt.constraints)} and "
            f"{rebuilt.indexes} other indexes kept."
        )
