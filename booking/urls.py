from django.urls import path

from . import views

app_name = "booking"

urlpatterns = [
    path("book/<slug:slug>/", views.page, name="page"),
    path("book/<slug:slug>/at/<str:when>/", views.slot, name="slot"),
    path("book/for/<str:token>/", views.for_lead, name="for_lead"),
    path("booking/<str:token>/", views.manage, name="manage"),
    path("booking/<str:token>/reschedule/", views.reschedule, name="reschedule"),
    path("booking/<str:token>/invite.ics", views.invite, name="invite"),
    path("feeds/meetings/<str:token>.ics", views.feed, name="feed"),
]
