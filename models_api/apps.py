from django.apps import AppConfig


class ModelsApiConfig(AppConfig):
    name = "models_api"
    verbose_name = "Models"

    def ready(self) -> None:
        from models_api import json_lookups

        json_lookups.install()
