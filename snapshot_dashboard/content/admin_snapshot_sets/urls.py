from django.urls import re_path

from snapshot_dashboard.content.admin_snapshot_sets import views

urlpatterns = [
    re_path(r'^$', views.IndexView.as_view(), name='index'),
]
