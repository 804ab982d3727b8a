"""Initial passwords: the organisation file's (and the demo's) passwords are known to whoever
wrote the file, so they are only a start. They are recorded here; ``ratepad server run`` refuses
to start while an active user still has one (unless ``--allow-default-passwords``), and every
way of setting a password forgets the record (Django calls ``password_changed`` on save)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .models import InitialPassword

# the longest password any login path takes (the API's token call refuses longer ones)
MAX_LENGTH = 1000


def mark_initial(user: AbstractBaseUser) -> None:
    """``user``'s password was just set from the organisation file."""
    InitialPassword.objects.get_or_create(user_id=user.pk)


def users_with_initial_passwords() -> list[str]:
    """The active users who can still log in with the organisation file's password."""
    rows = InitialPassword.objects.filter(user__is_active=True).exclude(
        user__password__startswith=UNUSABLE_PASSWORD_PREFIX  # disabled in the admin pages
    )
    return sorted(rows.values_list("user__username", flat=True))


class NotTheInitialPassword:
    """A password validator (``AUTH_PASSWORD_VALIDATORS``): a new password cannot be the
    initial one again; setting any password forgets that the user had an initial one."""

    def validate(self, password: str, user: Any = None) -> None:
        if (
            isinstance(user, AbstractBaseUser)
            and user.pk is not None
            and InitialPassword.objects.filter(user_id=user.pk).exists()
            and user.check_password(password)
        ):
            raise ValidationError(
                _("The new password must differ from the organisation file's initial one."),
                code="password_initial",
            )

    def password_changed(self, password: str, user: Any = None) -> None:
        if isinstance(user, AbstractBaseUser) and user.pk is not None:
            InitialPassword.objects.filter(user_id=user.pk).delete()
            from ..api.auth import revoke
            from ..api.models import ApiToken

            # a stolen token must not outlive the password it was issued under
            revoke(None, ApiToken.objects.filter(user_id=user.pk), "password changed", user)

    def get_help_text(self) -> str:
        return _("Your password cannot be the initial one from the organisation file.")


class MaximumLength:
    """A password validator: at most ``MAX_LENGTH`` characters, so that every login path (the
    API's token call included) takes every password the policy admits."""

    def validate(self, password: str, user: Any = None) -> None:
        if len(password) > MAX_LENGTH:
            raise ValidationError(
                _("The password is longer than %(n)d characters.") % {"n": MAX_LENGTH},
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return _("Your password has at most %(n)d characters.") % {"n": MAX_LENGTH}
