"""Files follow their model: when a model is deleted (API, admin or shell), every file under
its prefix is deleted once the deletion has committed.

Deliberately no signal on ModelRecord itself: any receiver there would make Django load every
record of a deleted model one by one instead of deleting them with one query.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from models_api.models import MLModel
from records import storage


@receiver(post_delete, sender=MLModel, dispatch_uid="records.delete_model_files")
def delete_model_files(sender, instance: MLModel, using: str, **kwargs) -> None:
    prefix = storage.model_prefix(instance.pk)
    transaction.on_commit(lambda: storage.delete_prefix(prefix), using=using)
