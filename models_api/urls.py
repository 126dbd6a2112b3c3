from models_api.api.routers import ContractRouter
from models_api.views import ExperimentViewSet, MLModelViewSet, SeasonViewSet, SiteViewSet

router = ContractRouter()
router.register("api/models", MLModelViewSet, basename="model")
router.register("api/experiments", ExperimentViewSet, basename="experiment")
router.register("api/seasons", SeasonViewSet, basename="season")
router.register("api/sites", SiteViewSet, basename="site")

urlpatterns = router.urls
