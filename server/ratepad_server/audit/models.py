"""The audit log: who changed what, when, from where. Rows are only ever added."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150)  # kept when the user is deleted
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, default="")
    object_id = models.CharField(max_length=200, default="")
    node_path = models.CharField(max_length=2000, default="", db_index=True)  # whose subtree
    detail = models.JSONField(default=dict)
    ip = models.GenericIPAddressField(null=True)

    class Meta:
        ordering = ["-at", "-id"]
