"""Which users still have the password the organisation file (or the demo) gave them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class InitialPassword(models.Model):
    """The user's password is still the one ``load-org`` set; the row goes when it changes
    (whichever way: the web, the admin pages, the CLI)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="initial_password"
    )
    set_at = models.DateTimeField(auto_now_add=True)
