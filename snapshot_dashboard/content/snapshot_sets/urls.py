from django.urls import re_path

from snapshot_dashboard.content.snapshot_sets import views

urlpatterns = [
    re_path(r'^$', views.IndexView.as_view(), name='index'),
    re_path(r'^create/(?P<instance_id>[^/]+)/$', views.CreateView.as_view(),
            name='create'),
    re_path(r'^(?P<set_id>[^/]+)/launch/$', views.LaunchView.as_view(),
            name='launch'),
    re_path(r'^(?P<set_id>[^/]+)/restore/$', views.RestoreView.as_view(),
            name='restore'),
    re_path(r'^run/(?P<run_id>[^/]+)/$', views.RunDetailView.as_view(),
            name='run'),
    re_path(r'^(?P<set_id>[^/]+)/$', views.DetailView.as_view(),
            name='detail'),
]
