"""What a person reads for each rating flag (``ratepad.flags``), translated: the one place the
server maps a flag's name to a label. The pages, the live wall and the exports' flag cells
use ``labels``; the API keeps the names."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import pgettext_lazy

from ratepad.flags import BY_NAME, names

# one word each (the pages join a rating's labels with spaces)
LABELS: dict[str, Promise] = {
    "unprompted": pgettext_lazy("rating flag", "unprompted"),
    "repeat": pgettext_lazy("rating flag", "repeat"),
    "multi_key": pgettext_lazy("rating flag", "multi-key"),
    "stuck_key": pgettext_lazy("rating flag", "stuck-key"),
    "no_staff": pgettext_lazy("rating flag", "no-staff"),
    "late": pgettext_lazy("rating flag", "late"),
    "damaged": pgettext_lazy("rating flag", "damaged"),
    "appeal_upheld": pgettext_lazy("rating flag", "appeal-upheld"),
}
if LABELS.keys() != BY_NAME.keys():  # a flag added to the table needs its label here
    raise RuntimeError(f"flag labels {sorted(LABELS)} do not match the flags {sorted(BY_NAME)}")


def label(name: str) -> str:
    """The translated label of the flag ``name`` (the name itself if it has none)."""
    lazy = LABELS.get(name)
    return str(lazy) if lazy is not None else name


def labels(flags: int) -> list[str]:
    """The translated labels of the flags set in ``flags``, in the table's order."""
    return [label(n) for n in names(flags)]
