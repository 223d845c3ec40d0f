from django.urls import path

from labelqa.analytics import views

app_name = "analytics"
urlpatterns = [
    path("", views.index, name="index"),
    path("<str:dataset>/prioritise/", views.prioritise, name="prioritise"),
    path("<str:dataset>/report.<str:fmt>", views.report_download, name="report"),
    path("<str:dataset>/labels.<str:fmt>", views.labels_download, name="labels"),
    path("<str:dataset>/calibration.png", views.calibration_png, name="calibration"),
    path("<str:dataset>/threshold.png", views.threshold_png, name="threshold"),
    # Labels are free text and may hold slashes; `path` keeps them whole.
    path("<str:dataset>/class/<path:label>/", views.class_page, name="class"),
]
