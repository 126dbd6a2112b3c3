"""Python client of the Models API: the whole API from a notebook or a pipeline, records as
DataFrames.

>>> from models_api_client import Client
>>> with Client("http://127.0.0.1:8000", "<token>") as client:
...     model = client.models.create(model_name="Weed detector")
...     frame = client.records.to_pandas(model.id)
"""

from models_api_client.client import Client
from models_api_client.errors import (
    APIError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TooLarge,
    TransportError,
    Unauthorized,
    Unavailable,
)
from models_api_client.objects import (
    Dataset,
    Experiment,
    IngestResult,
    Model,
    Record,
    Run,
    Season,
    Site,
)

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "Client",
    "Conflict",
    "Dataset",
    "Experiment",
    "Forbidden",
    "IngestResult",
    "Invalid",
    "Model",
    "NotFound",
    "Record",
    "Run",
    "Season",
    "Site",
    "TooLarge",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "__version__",
]
