from django.urls import path

from labelqa.catalog import views

app_name = "catalog"
urlpatterns = [
    path("", views.datasets, name="datasets"),
    path("classify/", views.classify, name="classify"),
    path("runs/<int:run_id>/", views.run, name="run"),
    path("runs/<int:run_id>/progress.json", views.run_progress, name="run_progress"),
    path("images/<int:image_id>/thumbnail/", views.thumbnail, name="thumbnail"),
    path("images/<int:image_id>/original/", views.original, name="original"),
]
