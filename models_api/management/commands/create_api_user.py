"""``manage.py create_api_user NAME``: a user allowed to use the API, and its token.

Without options the user may read and write every object type of the API; ``--read-only``
gives only the ``view`` permissions. Running it again for the same user prints the same token.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token

API_APPS = ("models_api", "records")
GROUPS = {
    "API readers": ("view",),
    "API writers": ("view", "add", "change", "delete"),
}


def api_group(name: str) -> Group:
    """The group ``name`` with exactly its API permissions (kept in step with new models)."""
    group, _ = Group.objects.get_or_create(name=name)
    actions = GROUPS[name]
    permissions = Permission.objects.filter(content_type__app_label__in=API_APPS).filter(
        codename__regex=rf"^({'|'.join(actions)})_"
    )
    group.permissions.set(permissions)
    return group


class Command(BaseCommand):
    help = "Create (or find) an API user and print its token."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--read-only", action="store_true", help="Only the view permissions."
        )

    @transaction.atomic
    def handle(self, *args, username: str, read_only: bool, **options) -> None:
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save()
        wanted, other = (
            ("API readers", "API writers") if read_only else ("API writers", "API readers")
        )
        user.groups.add(api_group(wanted))
        user.groups.remove(*Group.objects.filter(name=other))
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
