from django.urls import path

from labelqa.analytics import views

app_name = "analytics"
urlpatterns = [
    path("", views.index, name="index"),
    path("<str:dataset>/report.<str:fmt>", views.report_download, name="report"),
    path("<str:dataset>/labels.<str:fmt>", views.labels_download, name="labels"),
]
