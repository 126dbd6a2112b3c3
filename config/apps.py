"""Django's admin with the service's own site (``config.admin_site``)."""

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    default_site = "config.admin_site.AdminSite"

    def ready(self) -> None:
        super().ready()
        from django.contrib.auth.signals import user_login_failed

        from models_api.api.auth_failures import count_failed_login

        user_login_failed.connect(count_failed_login, dispatch_uid="count_failed_login")
