"""API bearer tokens (``POST /api/v1/auth/token``); only their SHA-256 is stored, so any
server instance can check a token another one issued."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
