from django.urls import path

from labelqa.catalog import views

app_name = "catalog"
urlpatterns = [
    path("", views.datasets, name="datasets"),
    path("classify/", views.classify, name="classify"),
    path("runs/<int:run_id>/", views.run, name="run"),
    path("runs/<int:run_id>/progress.json", views.run_progress, name="run_progress"),
    path("imports/<int:job_id>/", views.import_job, name="import_job"),
    path("imports/<int:job_id>/progress.json", views.import_progress, name="import_progress"),
    path("<int:dataset_id>/reform/", views.reform, name="reform"),
    path("images/<int:image_id>/thumbnail/", views.thumbnail, name="thumbnail"),
    path("images/<int:image_id>/original/", views.original, name="original"),
]
