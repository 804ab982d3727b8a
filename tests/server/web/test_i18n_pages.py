"""Every word in the reader's language.

* The catalogs: each compiles with ``msgfmt --check-format``; no entry is empty, fuzzy or holds
  a catalog's header text (``Project-Id-Version: … Plural-Forms …``) as its translation; the
  English catalog of an app has the messages of its Chinese one.
* The pages: every page of the web's URL map (the permission matrix of
  ``test_web_permissions.py``, which fails on a page missing from it), for every caller it
  answers, in zh-Hans and in English, rendered with Django's test client in a subprocess on a
  seeded database (every flag, keypad state, alert state and kind, appeal state, case step,
  audit action), with the JSON the charts and the live wall read and the exports' cells. A
  Chinese page fails on an identifier or an English word of the code's own enums (flags,
  keypad states, alert and appeal states, rule kinds, audit actions, case steps, weekdays …)
  and on English sentences; an English page fails on a Chinese character or an identifier.
  The organisation's names, the users' names and what users typed are data, left out.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SERVER = HERE.parents[2] / "server" / "ratepad_server"
CATALOGS = sorted(SERVER.glob("**/locale/*/LC_MESSAGES/django.po"))
# what only a catalog's header holds (msgfmt and makemessages write these lines)
HEADER_FIELDS = (
    "Project-Id-Version",
    "Plural-Forms:",
    "Content-Type:",
    "MIME-Version:",
    "POT-Creation-Date",
    "Last-Translator:",
    "Report-Msgid-Bugs-To",
)


# -- the catalogs -------------------------------------------------------------------------------
@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: "/".join(p.parts[-5:-2]))
def test_catalog_compiles_and_every_entry_is_a_translation(po: Path, tmp_path: Path) -> None:
    import polib

    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "gettext's msgfmt is missing (apt-get install gettext)"
    subprocess.run([msgfmt, "--check-format", "-o", str(tmp_path / "x.mo"), str(po)], check=True)
    catalog = polib.pofile(str(po))
    bad = []
    for e in catalog:
        if e.obsolete:
            continue
        strings = list(e.msgstr_plural.values()) if e.msgid_plural else [e.msgstr]
        if "fuzzy" in e.flags:
            bad.append(("fuzzy", e.msgid))
        if any(not s.strip() for s in strings):
            bad.append(("empty", e.msgid))
        if any(field in s for s in strings for field in HEADER_FIELDS):
            bad.append(("header text as the translation", e.msgid))
    assert "fuzzy" not in catalog.metadata_as_entry().flags
    assert not bad, f"{po}: {bad}"


def _msgids(po: Path) -> set[tuple[str, str]]:
    import polib

    return {(e.msgctxt or "", e.msgid) for e in polib.pofile(str(po)) if not e.obsolete}


def test_each_app_speaks_both_languages() -> None:
    """An app's English catalog has exactly its Chinese catalog's messages (an English
    translation may word a message better than its msgid; a missing one is the msgid)."""
    chinese = [p for p in CATALOGS if p.parts[-3] == "zh_Hans"]
    assert len(chinese) >= 4
    for zh in chinese:
        en = zh.parents[2] / "en" / "LC_MESSAGES" / "django.po"
        assert en.exists(), f"no English catalog beside {zh}"
        missing, extra = _msgids(zh) - _msgids(en), _msgids(en) - _msgids(zh)
        assert not missing and not extra, f"{en}: missing {sorted(missing)}, extra {sorted(extra)}"


# -- the pages ----------------------------------------------------------------------------------
CJK = re.compile(r"[\u3001-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
WORD = re.compile(r"[A-Za-z][A-Za-z_.\-]*[A-Za-z]|[A-Za-z]")
# two or more English words in a row (letters only, spaces between): a sentence left English
ENGLISH_RUN = re.compile(r"\b[A-Za-z]{2,}(?: [A-Za-z]{2,})+\b")
# a command of the server named in a help text (``ratepad survey --example``): code, not words
COMMAND = re.compile(r"\bratepad(?: [a-z-]+)?(?: --?[a-z-]+)*")
# ASCII words a Chinese page may show: units, abbreviations and names of things
ZH_ALLOWED = {
    "ratepad",
    "csv",
    "xlsx",
    "pdf",
    "ip",
    "csat",
    "n",
    "p",
    "id",
    "ok",
    "api",
    "url",
    "min",
    "s",
    "ms",
    "h",
    "nps",
    "ci",
    "webhook",
    "e-mail",
    "email",
    "wilson",
    "index",
    "k",
    "vs",
    "x",
    "a",
    "b",
    "usb",
    "http",
    "https",
    "json",
}


_RENDERED: dict[str, Any] = {}  # one rendering serves the pages' and the exports' test


def _rendered(site: Any, tmp_path: Path) -> dict[str, Any]:
    """Every page rendered in a subprocess (Django configured on the test database); its
    findings, written as JSON."""
    if "result" in _RENDERED:
        return dict(_RENDERED["result"])
    out = tmp_path / "findings.json"
    env = {
        **os.environ,
        "RATEPAD_DB": site.db,
        "RATEPAD_ALLOWED_HOSTS": "testserver",
        "RATEPAD_SECRET_KEY": "test-secret-key-of-the-ratepad-server-test-suite",
        "DJANGO_SETTINGS_MODULE": "ratepad_server.settings",
    }
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), env.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, __file__, json.dumps(site.keys), str(out)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    _RENDERED["result"] = json.loads(out.read_text())
    return dict(_RENDERED["result"])


def _report(findings: list[dict[str, Any]]) -> list[str]:
    """One line per finding: where it was seen first and how often."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for f in findings:
        grouped.setdefault((f["lang"], f["finding"]), []).append(f"{f['caller']} {f['page']}")
    return [
        f"{lang}: {what} — {len(where)}× e.g. {where[0]}"
        for (lang, what), where in sorted(grouped.items())
    ]


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_every_page_in_both_languages(site: Any, tmp_path: Path) -> None:
    result = _rendered(site, tmp_path)
    assert result["pages"] > 150, result  # every page, caller and language was visited
    print(f"{result['pages']} answers in {result['seconds']:.1f} s; slowest {result['slowest']}")
    lines = _report(result["findings"])  # the pages, their charts' data and their exports
    assert not lines, "\n".join(lines)


def test_scripts_hold_no_words() -> None:
    """The pages' scripts show what the server sends (the chart data's labels), never words
    of their own: no weekday or month name in them (the heatmap's rows once were "Mon" …)."""
    import calendar

    names = {n for n in (*calendar.day_name, *calendar.day_abbr, *calendar.month_name) if n}
    quoted = re.compile(r"[\"'`]([A-Za-z]+)[\"'`]")
    for js in sorted((SERVER / "web" / "static").glob("**/*.js")):
        if "vendor" in js.parts:
            continue
        found = set(quoted.findall(js.read_text(encoding="utf-8"))) & names
        assert not found, f"{js.name}: {sorted(found)}"


# -- in the subprocess: seed, render, look ------------------------------------------------------
class Visible(HTMLParser):
    """The text a reader sees in a page (and the strings of its JSON data blocks)."""

    SHOWN_ATTRS = ("title", "placeholder", "aria-label", "alt", "data-label")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.skip = 0
        self.json_block = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "style", "code"):  # a command's name is not a word of the page
            self.skip += 1
            self.json_block = tag == "script" and a.get("type") == "application/json"
        self.texts += [v for k, v in attrs if k in self.SHOWN_ATTRS and v]
        if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
            self.texts.append(a["value"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code") and self.skip:
            self.skip -= 1
            self.json_block = False

    def handle_data(self, data: str) -> None:
        if self.json_block:
            try:
                self.texts += list(json_strings(json.loads(data)))
            except ValueError:
                self.texts.append(data)
        elif not self.skip and data.strip():
            self.texts.append(data)


def json_strings(value: Any) -> Iterator[str]:
    """The string values (not the keys) of decoded JSON."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_strings(v)


def texts_of(content_type: str, body: bytes) -> list[str]:
    """What a reader sees of an answer: a page's text, JSON's strings, an export's cells."""
    if content_type.startswith("text/html"):
        parser = Visible()
        parser.feed(body.decode())
        return parser.texts
    if content_type.startswith("application/json"):  # its HTML fragments: their text
        return [
            t
            for s in json_strings(json.loads(body))
            for t in (texts_of("text/html", s.encode()) if s.startswith("<") else [s])
        ]
    if content_type.startswith("text/event-stream"):
        lines = body.decode().splitlines()
        return [
            s
            for line in lines
            if line.startswith("data:")
            for s in json_strings(json.loads(line[5:]))
        ]
    if content_type.startswith("text/csv"):
        return [cell for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))) for cell in row]
    if "spreadsheetml" in content_type:
        import openpyxl

        book = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
        return [
            str(c)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for c in row
            if isinstance(c, str)
        ]
    return []  # a PDF: its pages are checked by its own tests


def foreign_words() -> tuple[set[str], set[str]]:
    """(English words, identifiers) of the code's own enums: what a Chinese page must not
    show, and the identifiers no page may show."""
    import calendar

    from django.utils import translation

    from ratepad.flags import FLAGS
    from ratepad_server.alerts.models import KIND_FIELDS, Alert, Appeal, Rule
    from ratepad_server.audit.actions import ACTIONS
    from ratepad_server.casework.models import Case, Step
    from ratepad_server.web.wall import STATES

    identifiers: set[str] = {f.name for f in FLAGS} | set(KIND_FIELDS) | set(ACTIONS)
    labels: list[object] = [f.label for f in FLAGS]
    for choices in (
        Alert.STATES,
        Appeal.STATES,
        Rule.KINDS,
        Case.STATES,
        Step.STEPS,
        Step.CHANNELS,
        list(STATES.items()),
    ):
        identifiers |= {str(k) for k, _ in choices}
        labels += [v for _, v in choices]
    with translation.override("en"):
        labels += [str(v) for v in ACTIONS.values()]
        words = {w.lower() for text in map(str, labels) for w in WORD.findall(text)}
    words |= {
        w.lower()
        for w in (
            *calendar.day_name,
            *calendar.day_abbr,
            *calendar.month_name,
            *calendar.month_abbr,
        )
        if w
    }
    words |= {i.lower() for i in identifiers}
    return words - ZH_ALLOWED, {i for i in identifiers if "_" in i or "." in i}


def data_strings() -> list[str]:
    """What the organisation and its users wrote (names, codes, notes): not the page's words.
    Longest first, so that a name is taken out whole before a shorter one inside it."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.utils.translation import get_language_info

    from ratepad_server.alerts.models import Rule
    from ratepad_server.casework.models import CalendarDay as Holiday
    from ratepad_server.org.models import Node, Staff, Window

    found: set[str] = set(User.objects.values_list("username", flat=True))
    for model, fields in (
        (Node, ("name", "code")),
        (Window, ("name", "code")),
        (Staff, ("name", "staff_id")),
        (Holiday, ("name",)),
        (Rule, ("name",)),
    ):
        for row in model.objects.values_list(*fields):
            found |= {str(v) for v in row if v}
    found |= set(TYPED) | {"K1", "K2", "K3", "K4"}
    found |= {get_language_info(code)["name_local"] for code, _ in settings.LANGUAGES}
    return sorted(found, key=len, reverse=True)


def findings_in(
    texts: Iterable[str], lang: str, data: list[str], foreign: set[str], identifiers: set[str]
) -> list[str]:
    """The words of ``texts`` that are not in the reader's language (``lang``)."""
    out: list[str] = []
    for text in texts:
        for d in data:
            text = text.replace(d, " ")
        if lang == "en":
            out += [f"Chinese: {text.strip()[:80]!r}" for _ in CJK.findall(text)[:1]]
            out += [
                f"identifier {w!r} in {text.strip()[:80]!r}"
                for w in WORD.findall(text)
                if w in identifiers
            ]
            continue
        text = COMMAND.sub(" ", text)
        words = [w for w in WORD.findall(text) if w.lower() not in ZH_ALLOWED]
        out += [
            f"English {w!r} in {text.strip()[:80]!r}"
            for w in words
            if w.lower() in foreign or w in identifiers
        ]
        out += [
            f"English {m!r} in {text.strip()[:80]!r}"
            for m in ENGLISH_RUN.findall(text)
            if not set(m.lower().split()) <= ZH_ALLOWED
        ]
    return sorted(set(out))


# user-typed text of the seeded database (data, not the page's language)
TYPED = (
    "typed-note-alpha",
    "typed-reason-beta",
    "typed-comment-gamma",
    "typed-rule-delta",
    "typed-decision-epsilon",
    "typed-step-zeta",
)


def seed(keys: dict[str, str]) -> None:
    """Every state the pages can show: ratings with every flag, keypads online, prompted and
    offline, alerts of every kind in every state (and one stored before alerts kept their
    reason), appeals pending, upheld and rejected, a case through its steps, every audit
    action, notifications of each kind (and of an older wording)."""
    from datetime import timedelta

    from django.contrib.auth.models import User
    from django.test import Client
    from django.utils import timezone

    from ratepad.flags import FLAGS
    from ratepad_server.alerts.models import Alert, Notification, Rule
    from ratepad_server.audit.actions import ACTIONS
    from ratepad_server.audit.models import AuditEntry
    from ratepad_server.org.models import Node, Window

    bj, bj1 = Node.objects.get(code="BJ"), Node.objects.get(code="BJ-001")
    rule = Rule.objects.create(node=bj, name=TYPED[3], kind="low_rating", level=2)
    for i, (kind, _label) in enumerate(Rule.KINDS[1:]):
        Rule.objects.create(node=bj, name=f"{TYPED[3]}{i}", kind=kind)
    now_ms = int(time.time() * 1000)
    levels = [0, 40, 60, 80, 100]

    def rating(serial: str, seq: int, score: int, staff: str, flags: int) -> dict[str, Any]:
        return {
            "serial": serial,
            "journal_seq": seq,
            "boot_id": 1,
            "uptime_ms": seq * 1000,
            "time_ms": now_ms - 600_000 + seq * 1000,
            "time_exact": True,
            "score": score,
            "key_count": 5,
            "level_value": levels[score - 1],
            "staff_id": staff,
            "prompt_id": seq,
            "flags": flags,
        }

    wire = [f for f in FLAGS if f.bit < 1 << 16]
    ratings = [
        rating("K1", i + 1, 1 + i % 5, "S001", wire[i % len(wire)].bit if i % 3 else 0)
        for i in range(40)
    ]
    ratings += [rating("K2", i + 1, 1 + i % 5, "S002", 0) for i in range(20)]
    prompts = [
        {
            "serial": "K1",
            "prompt_id": i + 1,
            "staff_id": "S001",
            "state": "answered" if i % 4 else "timed_out",
            "issued_at_ms": now_ms - 700_000,
            "timeout_ms": 30_000,
            "closed_at_ms": now_ms - 690_000,
        }
        for i in range(40)
    ]
    sessions = [{"serial": "K1", "staff_id": "S001", "started_at_ms": now_ms - 3_600_000}]
    devices = [
        {
            "serial": "K1",
            "connected": True,
            "state": "prompted",
            "staff_id": "S001",
            "updated_at_ms": now_ms,
        },
        {"serial": "K2", "connected": True, "state": "idle", "updated_at_ms": now_ms},
    ]
    agent = Client()
    for branch, body in (
        (
            "BJ-001",
            {"ratings": ratings, "prompts": prompts, "sessions": sessions, "devices": devices},
        ),
        (
            "BJ-002",
            {
                "ratings": [rating("K3", 1, 1, "S101", 0)],
                "devices": [{"serial": "K3", "connected": False, "updated_at_ms": now_ms}],
            },
        ),
    ):
        answer = agent.post(
            "/api/v1/ingest/batch",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {keys[branch]}",
        )
        assert answer.status_code == 200, answer.content
    manager, clerk = Client(), Client()
    manager.force_login(User.objects.get(username="bj-manager"))
    clerk.force_login(User.objects.get(username="s001"))
    low = [r for r in ratings if r["serial"] == "K1" and r["score"] <= 2 and not r["flags"]]
    for r in low[:3]:
        form = {"serial": "K1", "journal_seq": str(r["journal_seq"]), "reason": TYPED[1]}
        assert clerk.post("/appeals/", form).status_code == 302, form
    from ratepad_server.alerts.models import Appeal

    pending = list(Appeal.objects.order_by("id"))
    for appeal, decision in zip(pending, ("upheld", "rejected"), strict=False):
        form = {"decision": decision, "note": TYPED[4]}
        assert manager.post(f"/appeals/{appeal.pk}/decide", form).status_code == 302
    from ratepad_server.casework.models import Case

    case = Case.objects.order_by("id").first()
    assert case is not None, "no case was opened for a low rating"
    for form in (
        {"step": "verify", "genuine": "yes", "note": TYPED[5]},
        {"step": "rectify", "note": TYPED[5]},
        {"step": "answer", "contacted": "yes", "channel": "phone", "note": TYPED[5]},
    ):
        assert manager.post(f"/cases/{case.pk}/step", form).status_code == 302, form
    # alerts the other kinds raise (as the engine writes them), and one stored before alerts
    # kept their reason (English text in ``summary`` only)
    w1 = Window.objects.get(code="BJ-001-W1")
    details: dict[str, dict[str, Any]] = {
        "bad_share": {
            "what": "bad_share",
            "k": 3,
            "n": 4,
            "level": 2,
            "minutes": 15,
            "window": "BJ-001-W1",
        },
        "low_index": {
            "what": "low_index",
            "index": 40.0,
            "threshold": 60,
            "n": 12,
            "minutes": 60,
            "window": "BJ-001-W1",
        },
        "unprompted": {
            "what": "unprompted",
            "k": 5,
            "n": 10,
            "share": 0.5,
            "minutes": 60,
            "window": "BJ-001-W1",
        },
        "offline": {"what": "offline", "serial": "K2", "time": "09:30"},
    }
    kinds = {r.kind: r for r in Rule.objects.filter(node=bj)}
    made = timezone.now()
    for kind, detail in details.items():
        Alert.objects.create(
            rule=kinds[kind],
            branch=bj1,
            window=w1,
            summary="x",
            value=0.5,
            n=4,
            deadline=made.date() + timedelta(days=3),
            created_at=made,
            detail=detail,
        )
    old = Alert.objects.create(
        rule=kinds["bad_share"],
        branch=bj1,
        window=w1,
        value=0.75,
        n=8,
        summary="BJ-001-W1: 6 of 8 ratings ≤ 2 in 60 min",
        deadline=made.date(),
        created_at=made - timedelta(days=1),
    )
    Alert.objects.create(
        rule=rule,
        branch=bj1,
        summary="BJ-001: over the cap of 50",
        digest=True,
        count=3,
        deadline=made.date() + timedelta(days=3),
        created_at=made,
        detail={"what": "over_cap", "k": 3, "cap": 50, "branch": "BJ-001"},
    )
    alerts = list(Alert.objects.filter(digest=False).order_by("id"))
    assert len(alerts) >= 4 and alerts[0].rule_id == rule.pk, "the rule raised no alert"
    posts = [
        (f"/alerts/{alerts[0].pk}/act", {"action": "acknowledge", "note": TYPED[0]}),
        (f"/alerts/{alerts[1].pk}/act", {"action": "resolve", "note": TYPED[0]}),
        (f"/alerts/{alerts[2].pk}/act", {"action": "assign", "assignee": "bj-manager"}),
        (f"/alerts/{alerts[2].pk}/comment", {"text": TYPED[2]}),
    ]
    for path, form in posts:
        assert manager.post(path, form).status_code == 302, path
    users = User.objects.filter(username__in=["hq-admin", "bj-manager", "bj001-admin"])
    Notification.objects.bulk_create(
        [Notification(user=u, alert=old, text=f"assigned: {old.summary}") for u in users]
        + [Notification(user=u, alert=old, text=old.summary) for u in users]
    )
    hq = User.objects.get(username="hq-admin")
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                user=hq,
                username="hq-admin",
                action=a,
                node_path=bj1.path,
                detail={"note": TYPED[0]},
            )
            for a in ACTIONS
        ]
    )


def extra_requests() -> list[tuple[str, str, str]]:
    """Pages the matrix opens at one node only, at the other levels, and what the pages read
    (the charts' and wall's JSON, the exports): (caller, method+path, form as a query)."""
    return [
        ("hq-admin", "/report/HQ/", ""),
        ("hq-admin", "/report/BJ/", ""),
        ("bj-manager", "/report/BJ-001/?window=BJ-001-W1", ""),
        ("bj-manager", "/report/BJ-001/export.xlsx", ""),
        ("bj-manager", "/ratings/BJ-001/export.csv", ""),
        ("bj-manager", "/live/BJ/", ""),
        ("bj-manager", "/wall/BJ/", ""),
        ("bj-manager", "/live/BJ/state", ""),
        ("bj-manager", "/alerts/?state=resolved", ""),
        ("bj-manager", "/alerts/?digest=1", ""),
        ("hq-admin", "/rules/new?kind=low_rating", ""),
        ("hq-admin", "/rules/new?kind=offline", ""),
        ("s001", "/appeals/", ""),
        ("bj-manager", "/cases/report/", ""),
    ]


def render_all(keys: dict[str, str]) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse
    from test_web_permissions import CALLERS, EXPECTED, page_names

    seed(keys)
    data = data_strings()
    foreign, identifiers = foreign_words()
    clients: dict[str, Client] = {}
    for caller in CALLERS:
        clients[caller] = Client()
        if caller != "anonymous":
            clients[caller].force_login(User.objects.get(username=caller))
    requests: list[tuple[str, str, str, Any]] = []  # caller, method, path, form
    for name in page_names():
        method, args, arg, expected = EXPECTED[name]
        if name in ("web:logout", "set_language", "web:monthly_pdf"):  # the PDF: its own tests
            continue
        refused: set[int] = set()  # a refusal's page is the same for every caller: once each
        for caller, status in expected.items():
            if status == 200 or (status in (400, 403, 404, 429) and status not in refused):
                refused.add(status)
                path = reverse(name, args=args) + (arg if method == "GET" else "")
                requests.append((caller, method, path, arg if method == "POST" else None))
    requests += [(c, "GET", p, None) for c, p, _ in extra_requests()]
    findings: list[dict[str, Any]] = []
    took: dict[str, float] = {}  # seconds per request, both languages (the slowest are told)
    pages = 0
    for lang in ("zh-hans", "en"):
        for caller, method, path, form in requests:
            client = clients[caller]
            client.cookies["django_language"] = lang
            headers = {"HTTP_ACCEPT_LANGUAGE": lang}
            started = time.monotonic()
            if method == "GET":
                answer = client.get(path, **headers)
            else:
                answer = client.post(path, form, **headers)
            pages += 1
            body = drained(answer)
            took[f"{caller} {method} {path}"] = took.get(f"{caller} {method} {path}", 0) + (
                time.monotonic() - started
            )
            texts = texts_of(answer.get("Content-Type", ""), body)
            for f in findings_in(texts, lang, data, foreign, identifiers):
                findings.append(
                    {
                        "lang": lang,
                        "caller": caller,
                        "page": f"{method} {path}",
                        "status": answer.status_code,
                        "finding": f,
                    }
                )
    slowest = sorted(took.items(), key=lambda kv: -kv[1])[:5]
    return {"pages": pages, "findings": findings, "slowest": slowest, "seconds": sum(took.values())}


def drained(answer: Any) -> bytes:
    """The whole body of an answer (a stream's too: the live wall's events end after
    ``?seconds=``)."""
    if not answer.streaming:
        return bytes(answer.content)
    content = answer.streaming_content
    if not hasattr(content, "__aiter__"):
        return b"".join(content)
    from asgiref.sync import async_to_sync

    async def drain() -> bytes:
        return b"".join([bytes(c) async for c in content])

    return bytes(async_to_sync(drain)())


def main() -> None:
    import logging

    import django

    logging.disable(logging.WARNING)  # the 4xx answers the matrix asks for
    django.setup()
    result = render_all(json.loads(sys.argv[1]))
    Path(sys.argv[2]).write_text(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
