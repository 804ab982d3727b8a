from __future__ import annotations

from django.contrib import admin

from .models import Binding, Node, Role, Staff, Window


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin[Node]):
    list_display = ["code", "name", "kind", "path"]
    search_fields = ["code", "name"]


@admin.register(Window)
class WindowAdmin(admin.ModelAdmin[Window]):
    list_display = ["code", "name", "branch"]
    search_fields = ["code", "name"]


@admin.register(Binding)
class BindingAdmin(admin.ModelAdmin[Binding]):
    list_display = ["serial", "window", "since", "until"]
    search_fields = ["serial"]


@admin.register(Staff)
class StaffAdmin(admin.ModelAdmin[Staff]):
    list_display = ["staff_id", "name", "branch"]


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin[Role]):
    list_display = ["user", "role", "node", "staff"]
