"""Django's ModelBackend, reading a user's permissions in one plain query instead of two ORM
queries.

Every API request checks a permission; Django's backend asks for the user's own and their
groups' permissions separately, each composed by the ORM. Same answers, one round trip, and
the API's token authentication reads them in the same query as the user (see
``granted_permissions_sql``), so that an API request checks its permission without a query.
"""

from __future__ import annotations

from django.contrib.auth import backends, get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router

_SEPARATOR = "\n"  # app labels are identifiers and codenames never hold a line break


def granted_permissions_sql(user_id: str) -> str:
    """A scalar subquery: the permissions of the user whose id is the SQL ``user_id``, own and
    through groups, as ``app_label.codename`` lines (NULL when there are none)."""
    permission, content_type = Permission._meta.db_table, ContentType._meta.db_table
    user = get_user_model()
    user_permissions = user.user_permissions.through._meta.db_table
    user_groups = user.groups.through._meta.db_table
    group_permissions = Group.permissions.through._meta.db_table
    return f"""(
        SELECT string_agg(ct.app_label || '.' || p.codename, '{_SEPARATOR}')
        FROM {permission} p JOIN {content_type} ct ON ct.id = p.content_type_id
        WHERE p.id IN (
            SELECT permission_id FROM {user_permissions} WHERE user_id = {user_id}
            UNION
            SELECT gp.permission_id FROM {group_permissions} gp
                JOIN {user_groups} ug ON ug.group_id = gp.group_id
                WHERE ug.user_id = {user_id}
        )
    )"""


def cache_permissions(user_obj, granted: str | None) -> None:
    """Keep the permissions read by ``granted_permissions_sql`` where the backend looks first.

    A superuser has every permission, which the backend reads itself when asked.
    """
    if not user_obj.is_superuser:
        user_obj._perm_cache = set(granted.split(_SEPARATOR)) if granted else set()


class ModelBackend(backends.ModelBackend):
    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                rows = Permission.objects.values_list("content_type__app_label", "codename")
                user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}
            else:
                connection = connections[router.db_for_read(Permission)]
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT {granted_permissions_sql('%s')}",
                        [user_obj.pk, user_obj.pk],
                    )
                    cache_permissions(user_obj, cursor.fetchone()[0])
        return user_obj._perm_cache
