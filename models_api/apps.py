from django.apps import AppConfig


class ModelsApiConfig(AppConfig):
    name = "models_api"
    verbose_name = "Models"
    # Every model has a UUID key; this types the ``id`` of the link tables Django creates for
    # the many-to-many fields (bigint, as the first migration made them).
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from models_api.api import json_lookups, sqlite

        json_lookups.install()
        sqlite.install()
