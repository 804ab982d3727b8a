"""Rules whose parameters the next migration's CHECK constraints refuse are switched off."""

import logging
import math
from typing import Any

from django.db import migrations

# the bounds as this migration sets them (alerts.models may move them later)
_BOUNDS = {"level": (1, 5), "min_n": (1, 1_000_000), "minutes": (1, 10080),
           "deadline_days": (1, 365), "threshold": (0.0, 100.0)}  # fmt: skip
_DEFAULTS = {"level": 2, "min_n": 10, "minutes": 60, "deadline_days": 3, "threshold": 0.3}
_SHARE_KINDS = ("bad_share", "unprompted")


def _switch_off_unbounded(apps: Any, schema_editor: Any) -> None:
    """A rule whose parameters the constraints of 0003 refuse is switched off, and each bad value
    replaced by the default, so that the constraints can be added; the log says which."""
    log = logging.getLogger("ratepad_server.alerts")
    Rule = apps.get_model("alerts", "Rule")
    for rule in Rule.objects.using(schema_editor.connection.alias).all():
        bad = []
        for field, (lo, hi) in _BOUNDS.items():
            value = getattr(rule, field)
            top = 1.0 if field == "threshold" and rule.kind in _SHARE_KINDS else hi
            if value is None or not math.isfinite(value) or not lo <= value <= top:
                bad.append(f"{field}={value!r}")
                setattr(rule, field, _DEFAULTS[field])
        if bad:
            rule.active = False
            rule.save()
            log.warning("alert rule %s (%s) switched off: %s", rule.pk, rule.name, ", ".join(bad))


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(_switch_off_unbounded, migrations.RunPython.noop)]
