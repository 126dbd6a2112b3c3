"""``manage.py load_demo``: the demo catalogue (Experiments A and B with their seasons, sites
and models). Idempotent: a second run finds everything in place and changes nothing."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from models_api.models import Experiment, MLModel, Season, Site

DEMO = {
    "A": {"start": "2024-01-01", "end": "2024-12-31"},
    "B": {"start": "2025-01-01", "end": "2025-12-31"},
}


class Command(BaseCommand):
    help = "Create the demo experiments, seasons, sites and models (safe to run again)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        created = 0
        for letter, dates in DEMO.items():
            experiment, new = Experiment.objects.get_or_create(
                experiment_name=f"Experiment {letter}",
                defaults={
                    "experiment_start_date": dates["start"],
                    "experiment_end_date": dates["end"],
                    "experiment_info": {"demo": True},
                },
            )
            created += new
            for number in (1, 2, 3):
                _, new = Season.objects.get_or_create(
                    experiment=experiment,
                    season_name=f"Season {number}{letter}",
                    defaults={"season_info": {"demo": True}},
                )
                created += new
                site, new = Site.objects.get_or_create(
                    site_name=f"Site {letter}{number}",
                    defaults={"site_country": "United States", "site_info": {"demo": True}},
                )
                created += new
                site.experiments.add(experiment)
            model, new = MLModel.objects.get_or_create(
                model_name=f"Model {letter}",
                defaults={"model_info": {"demo": True}},
            )
            created += new
            model.experiments.add(experiment)
        self.stdout.write(f"Demo data in place ({created} objects created).")
