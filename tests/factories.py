"""factory_boy factories for the catalogue (and, once they exist, records)."""

from __future__ import annotations

import datetime

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


class ModelRecordFactory(factory.django.DjangoModelFactory):
    """A record whose season belongs to its experiment, as the API guarantees."""

    class Meta:
        model = "records.ModelRecord"

    model = factory.SubFactory(MLModelFactory)
    season = factory.SubFactory(SeasonFactory)
    experiment = factory.LazyAttribute(lambda r: r.season.experiment)
    site = factory.SubFactory(SiteFactory)
    dataset = factory.SubFactory(DatasetFactory)
    timestamp = factory.Sequence(
        lambda n: datetime.datetime(2024, 6, 1, tzinfo=datetime.UTC)
        + datetime.timedelta(minutes=n)
    )
    collection_date = factory.LazyAttribute(lambda r: r.timestamp.date())
    model_data = factory.Sequence(lambda n: {"n": n})
