from django.urls import path

from labelqa.review import correction_views, gold_views, views

app_name = "review"
urlpatterns = [
    path("", views.home, name="home"),
    path("next/", views.next_batch, name="next"),
    path("batch/<int:batch_id>/", views.batch, name="batch"),
    path("quality/", views.quality, name="quality"),
    path("quality/exclusion/", views.exclusion, name="exclusion"),
    path("gold/", gold_views.gold, name="gold"),
    path("gold/rate/", gold_views.gold_rate, name="gold_rate"),
    path("gold/mark/", gold_views.gold_mark_view, name="gold_mark"),
    path("correct/", correction_views.correct, name="correct"),
    path("correction-pass/", correction_views.correction_pass, name="correction_pass"),
]
