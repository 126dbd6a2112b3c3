"""Django's model permissions decide every read and write.

DRF's ``DjangoModelPermissions`` lets any authenticated user read; here reading needs the
``view`` permission too. The object type checked is the viewset's model, or the one an action
names in ``permission_model`` (``GET /api/models/id/{id}/runs`` reads runs, so it needs
``view_modelrun``).
"""

from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions

VIEW = ["%(app_label)s.view_%(model_name)s"]


class ModelPermissions(DjangoModelPermissions):
    perms_map = {**DjangoModelPermissions.perms_map, "GET": VIEW, "HEAD": VIEW}

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if getattr(view, "_ignore_model_permissions", False):
            return True
        model = getattr(view, "permission_model", None) or self._queryset(view).model
        return user.has_perms(self.get_required_permissions(request.method, model))
