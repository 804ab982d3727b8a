"""Admin pages of accounts and credentials: users (password reset, API tokens), agent keys
(last upload, revoke) and API tokens (revoke). Every change is in the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..api.auth import revoke as revoke_tokens
from ..api.models import ApiToken
from ..audit.log import record
from ..ingest import keys
from ..ingest.models import AgentKey

admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin[User]):
    list_display = ["username", "is_active", "is_staff", "has_initial_password", "last_login"]
    actions = ["revoke_api_tokens"]

    @admin.display(boolean=True, description=_("initial password"))
    def has_initial_password(self, user: User) -> bool:
        return hasattr(user, "initial_password")

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        """Django's reset page (the password policy applies), recorded when it succeeds."""
        response: HttpResponse = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = User.objects.filter(pk=id).first()
            if user is not None:
                record(request, "password.reset", user, target=user.get_username())
        return response

    @admin.action(description=_("Revoke the selected users' API tokens"))
    def revoke_api_tokens(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        count = revoke_tokens(request, ApiToken.objects.filter(user__in=queryset), "admin")
        self.message_user(request, _("%(count)d API tokens revoked.") % {"count": count})


@admin.register(AgentKey)
class AgentKeyAdmin(admin.ModelAdmin[AgentKey]):
    """Keys are enrolled and rotated with the CLI (the key is printed once); here they are
    seen and revoked. Revoked keys stay listed: the ratings they uploaded keep their source."""

    list_display = ["key_id", "branch", "created_at", "last_upload_at", "revoked_at", "live"]
    list_filter = ["branch"]
    search_fields = ["key_id", "branch__code"]
    ordering = ["branch__code", "created_at"]
    readonly_fields = ["key_id", "branch", "created_at", "last_upload_at", "revoked_at"]
    exclude = ["key_hash"]
    actions = ["revoke_keys"]

    @admin.display(boolean=True, description=_("accepts uploads"))
    def live(self, row: AgentKey) -> bool:
        return keys.is_live(row, timezone.now())

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Revoke the selected agent keys (their next upload: 401)"))
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[AgentKey]) -> None:
        for row in queryset.select_related("branch"):
            keys.revoke(row)
            record(request, "agent_key.revoke", row, node_path=row.branch.path,
                   branch=row.branch.code)  # fmt: skip
        self.message_user(request, _("Agent keys revoked."), messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """Users' API tokens (only their hashes are stored); deleting one revokes it."""

    list_display = ["id", "user", "created_at", "expires_at"]
    list_filter = ["user"]
    exclude = ["token_hash"]
    readonly_fields = ["user", "created_at", "expires_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        revoke_tokens(request, ApiToken.objects.filter(pk=obj.pk), "admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoke_tokens(request, queryset, "admin")
