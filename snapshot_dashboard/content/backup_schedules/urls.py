from django.urls import re_path

from snapshot_dashboard.content.backup_schedules import views

urlpatterns = [
    re_path(r'^$', views.IndexView.as_view(), name='index'),
    re_path(r'^create/$', views.ChooseServerView.as_view(), name='choose'),
    re_path(r'^create/(?P<instance_id>[^/]+)/$', views.CreateView.as_view(),
            name='create'),
    re_path(r'^(?P<schedule_id>[^/]+)/edit/$', views.EditView.as_view(),
            name='edit'),
    re_path(r'^(?P<schedule_id>[^/]+)/$', views.DetailView.as_view(),
            name='detail'),
]
