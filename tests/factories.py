"""factory_boy factories for the catalogue (and, once they exist, records)."""

from __future__ import annotations

import factory

from models_api.models import Dataset, Experiment, MLModel, ModelRun, Season, Site


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    experiment_name = factory.Sequence(lambda n: f"Experiment {n}")


class SeasonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Season

    experiment = factory.SubFactory(ExperimentFactory)
    season_name = factory.Sequence(lambda n: f"Season {n}")


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    site_name = factory.Sequence(lambda n: f"Site {n}")


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    dataset_name = factory.Sequence(lambda n: f"Dataset {n}")


class MLModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MLModel

    model_name = factory.Sequence(lambda n: f"Model {n}")
    model_url = factory.LazyAttribute(lambda m: f"https://models.example.org/{m.model_name}")


class ModelRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelRun

    model = factory.SubFactory(MLModelFactory)
