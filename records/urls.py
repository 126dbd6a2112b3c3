from django.urls import path

from models_api.api.routers import ContractRouter
from records.views import ModelRecordsViewSet, RecordViewSet, signed_file

router = ContractRouter()
router.register("api/models/records", RecordViewSet, basename="record")
router.register(
    r"api/models/id/(?P<model_pk>[^/]+)/records", ModelRecordsViewSet, basename="model-records"
)

urlpatterns = [
    path("api/models/records/files/<str:token>", signed_file, name="record-file"),
    *router.urls,
]
