"""The organisation: a tree of nodes (HQ → region → branch, any depth), windows at branches,
keypad ↔ window bindings with history, staff, and users with a role at a node.

``Node.path`` is the materialised path (``/HQ/BJ/BJ-001/``): a subtree is one prefix match.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Node(models.Model):
    BRANCH = "branch"

    code = models.CharField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=32, default="")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(max_length=2000, db_index=True, editable=False)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def contains(self, other: Node) -> bool:
        """True if ``other`` is this node or below it."""
        return other.path.startswith(self.path)


class Window(models.Model):
    code = models.CharField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    branch = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="windows")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Binding(models.Model):
    """Keypad ``serial`` served window ``window`` from ``since`` until ``until`` (open: now).

    A rating belongs to the window its keypad was bound to at the rating's time, so a keypad
    moved to another window leaves its old ratings where they were."""

    serial = models.CharField(max_length=64)
    window = models.ForeignKey(Window, on_delete=models.PROTECT, related_name="bindings")
    since = models.DateTimeField()
    until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["serial", "since"])]
        constraints = [
            models.UniqueConstraint(
                fields=["serial"], condition=models.Q(until=None), name="one_open_binding"
            )
        ]

    def covers(self, when: datetime) -> bool:
        return self.since <= when and (self.until is None or when < self.until)


class Staff(models.Model):
    staff_id = models.CharField(_("staff id"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    branch = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="staff")

    class Meta:
        verbose_name_plural = "staff"

    def __str__(self) -> str:
        return f"{self.staff_id} {self.name}"


class Role(models.Model):
    """What a user may see and do: ``role`` on the subtree of ``node``."""

    ADMIN, MANAGER, VIEWER, STAFF = "admin", "manager", "viewer", "staff"
    CHOICES = [
        (ADMIN, _("admin")),
        (MANAGER, _("manager")),
        (VIEWER, _("viewer")),
        (STAFF, _("staff")),
    ]

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratepad_role"
    )
    role = models.CharField(max_length=16, choices=CHOICES)
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="roles")
    staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.PROTECT)

    def __str__(self) -> str:
        return f"{self.user} {self.role}@{self.node.code}"
