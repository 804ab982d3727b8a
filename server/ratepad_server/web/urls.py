"""The web's URL map (mounted at the site's root); every view checks its roles and subtree."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from ..accounts import views as accounts
from . import appeals, casework, exports, loop, overview, surveys, views, wall

app_name = "web"
urlpatterns = [
    path("", overview.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="web:login"), name="logout"),
    path("report/<str:code>/", views.report, name="report"),
    path("report/<str:code>/export.<str:fmt>", exports.export_report, name="export_report"),
    path("report/<str:code>/monthly.pdf", exports.monthly_pdf, name="monthly_pdf"),
    path("live/<str:code>/", wall.live, name="live"),
    path("live/<str:code>/events", wall.live_events, name="live_events"),
    path("live/<str:code>/state", wall.live_state, name="live_state"),
    path("wall/<str:code>/", wall.wall, name="wall"),
    path("ratings/<str:code>/", views.ratings, name="ratings"),
    path("ratings/<str:code>/export.<str:fmt>", exports.export_ratings, name="export_ratings"),
    path("alerts/", loop.alerts, name="alerts"),
    path("alerts/bulk", loop.alerts_bulk, name="alerts_bulk"),
    path("alerts/<int:pk>/", loop.alert, name="alert"),
    path("alerts/<int:pk>/act", loop.alert_act, name="alert_act"),
    path("alerts/<int:pk>/comment", loop.alert_comment, name="alert_comment"),
    path("rules/", loop.rules, name="rules"),
    path("rules/<int:pk>/toggle", loop.rule_toggle, name="rule_toggle"),
    path("rules/new", loop.rule_new, name="rule_new"),
    path("rules/<int:pk>/edit", loop.rule_edit, name="rule_edit"),
    path("rules/<int:pk>/delete", loop.rule_delete, name="rule_delete"),
    path("appeals/", appeals.appeals, name="appeals"),
    path("appeals/<int:pk>/decide", appeals.appeal_decide, name="appeal_decide"),
    path("cases/", casework.cases, name="cases"),
    path("cases/<int:pk>/", casework.case, name="case"),
    path("cases/<int:pk>/step", casework.case_step, name="case_step"),
    path("cases/report/", casework.loop_month, name="loop_month"),
    path("cases/rules/", casework.loop_policy, name="loop_policy"),
    path("holidays/", casework.holidays, name="holidays"),
    path("notifications/", loop.notifications, name="notifications"),
    path("notifications/read", loop.notifications_read, name="notifications_read"),
    path("survey/", surveys.survey, name="survey"),
    path("survey/<str:code>/", surveys.node_survey, name="survey_report"),
    path("survey/<str:code>/export.<str:fmt>", surveys.survey_export, name="survey_export"),
    path("returnvisits/<str:code>/", surveys.returnvisits, name="returnvisits"),
    path("returnvisits/<str:code>/new", surveys.returnvisit_new, name="returnvisit_new"),
    path(
        "returnvisits/<str:code>/export.<str:fmt>",
        surveys.returnvisits_export,
        name="returnvisits_export",
    ),
    path("audit/", views.audit, name="audit"),
    path("account/", accounts.account, name="account"),
    path("account/tokens/<int:pk>/revoke", accounts.token_revoke, name="token_revoke"),
]
