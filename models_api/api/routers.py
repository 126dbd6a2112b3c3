"""URL shapes of the contract: ``/all``, ``/``, ``/id/{id}`` and ``/id/{id}/<action>``.

Every route takes an optional trailing slash in its pattern, so that both spellings reach the
view directly for every method; nothing ever redirects (a redirected POST loses its body).
"""

from rest_framework.routers import DynamicRoute, Route, SimpleRouter


class ContractRouter(SimpleRouter):
    routes = [
        Route(
            url=r"^{prefix}{trailing_slash}$",
            mapping={"get": "list", "post": "create"},
            name="{basename}-list",
            detail=False,
            initkwargs={"suffix": "List"},
        ),
        DynamicRoute(
            url=r"^{prefix}/{url_path}{trailing_slash}$",
            name="{basename}-{url_name}",
            detail=False,
            initkwargs={},
        ),
        Route(
            url=r"^{prefix}/id/{lookup}{trailing_slash}$",
            mapping={"get": "retrieve", "patch": "partial_update", "delete": "destroy"},
            name="{basename}-detail",
            detail=True,
            initkwargs={"suffix": "Instance"},
        ),
        DynamicRoute(
            url=r"^{prefix}/id/{lookup}/{url_path}{trailing_slash}$",
            name="{basename}-{url_name}",
            detail=True,
            initkwargs={},
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"
