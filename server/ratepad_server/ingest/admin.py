"""Quarantine and conflicts in the Django admin: read only (a quarantined rating is assigned
through ``POST /api/v1/quarantine/assign``, which checks the window and the rollups)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Conflict, Quarantine, Rating
from .service import CONTENT


class ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Quarantine)
class QuarantineAdmin(ReadOnly):
    list_display = ["kind", "serial", "journal_seq", "time", "reason", "branch", "created_at",
                    "assigned_at", "outcome"]  # fmt: skip
    list_filter = ["kind", "reason", "outcome"]
    search_fields = ["serial"]


@admin.register(Conflict)
class ConflictAdmin(ReadOnly):
    list_display = ["serial", "journal_seq", "differs", "branch", "agent", "received_at"]
    search_fields = ["serial"]
    readonly_fields = ["stored"]

    @admin.display(description="stored rating")
    def stored(self, obj: Conflict) -> str:
        row = (
            Rating.objects.filter(serial=obj.serial, journal_seq=obj.journal_seq)
            .values(*CONTENT)
            .first()
        )
        return "-" if row is None else ", ".join(f"{k}={v}" for k, v in row.items())
