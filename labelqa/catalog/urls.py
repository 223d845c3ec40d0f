from django.urls import path

from labelqa.catalog import views

app_name = "catalog"
urlpatterns = [
    path("", views.datasets, name="datasets"),
    path("images/<int:image_id>/thumbnail/", views.thumbnail, name="thumbnail"),
    path("images/<int:image_id>/original/", views.original, name="original"),
]
