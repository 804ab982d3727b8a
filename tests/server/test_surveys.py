"""Surveys in the server: importing a survey's responses against its definition (every bad cell
one line, nothing stored), the survey report of a node and period equal to ``ratepad.survey``'s
analysis, its exports, the survey figures beside the keypad index on the node's report, return
visits from a bad rating and from the API with their on-time counts, and who may do what."""

from __future__ import annotations

import csv
import io
import re
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from pypdf import PdfReader
from serverlib import Server, Site, call
from webclient import WebClient, logged_in
from webdata import rating, upload

from ratepad.survey import analyse, example_definition, example_path, generate_csv
from ratepad.survey.responses import parse_responses

TODAY = date.today()
FIRST, LAST = TODAY - timedelta(days=20), TODAY - timedelta(days=1)
SPAN = f"since={FIRST}&until={LAST}"


def definition_text() -> str:
    text = example_path().read_text(encoding="utf-8")
    text = re.sub(r"^first = .*$", f"first = {FIRST}", text, flags=re.M)
    return re.sub(r"^last = .*$", f"last = {LAST}", text, flags=re.M)


def post_files(
    client: WebClient, path: str, fields: dict[str, str], files: dict[str, tuple[str, str]]
) -> tuple[int, str, str]:
    """A multipart POST: (status, body, Location)."""
    client.get("/survey/")
    token = next(c.value for c in client.jar if c.name == "csrftoken") or ""
    boundary = "----ratepad-survey"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    ]
    parts += [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{n}"\r\n'
        f"Content-Type: text/plain\r\n\r\n{body}\r\n"
        for k, (n, body) in files.items()
    ]
    data = ("".join(parts) + f"--{boundary}--\r\n").encode()
    req = urllib.request.Request(
        client.base + path,
        data=data,
        method="POST",
        headers={
            **client.headers,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-CSRFToken": token,
        },
    )
    try:
        with client.opener.open(req) as resp:
            return resp.status, resp.read().decode(), resp.headers.get("Location", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers.get("Location", "")


def import_example(client: WebClient, n: int = 60, seed: int = 7) -> tuple[int, str, str]:
    return post_files(
        client,
        "/survey/?import=1",
        {"node": "BJ-001"},
        {
            "definition": ("servqual.toml", definition_text()),
            "responses": ("answers.csv", generate_csv(example_definition(), n, seed)),
        },
    )


def test_survey_import_report_exports_and_the_node_report(site: Site, server: Server) -> None:
    manager = logged_in(server.url, "bj-manager")
    manager.headers["Accept-Language"] = "en"
    # a bad file: every bad cell is one line and nothing is imported
    d = example_definition()
    lines = generate_csv(d, 12, 3).splitlines()
    lines[2] = lines[2].replace(",", ",9", 1)  # respondent r2's first answer: out of the scale
    lines[5] = lines[5] + ",extra"
    status, page, _ = post_files(
        manager,
        "/survey/?import=1",
        {"node": "BJ-001"},
        {
            "definition": ("servqual.toml", definition_text()),
            "responses": ("bad.csv", "\n".join(lines) + "\n"),
        },
    )
    assert status == 400
    errors = re.findall(r'<ul class="error" id="import-errors">(.*?)</ul>', page, re.S)[0]
    items = re.findall(r"<li>(.*?)</li>", errors)
    assert len(items) == 2
    assert re.fullmatch(
        r"bad\.csv: row 3, column &#x27;T1_E&#x27;: \d+ is outside the scale 1\.\.7", items[0]
    )
    assert "row 6:" in items[1]
    assert site.sql("SELECT count(*) FROM surveys_surveyimport") == (0,)
    # another subtree's node is refused, a definition error is one line
    status, page, _ = post_files(
        manager,
        "/survey/?import=1",
        {"node": "SH-001"},
        {"definition": ("d.toml", definition_text()), "responses": ("a.csv", "\n".join(lines))},
    )
    assert status == 400 and "No such node here." in page
    status, page, _ = post_files(
        manager,
        "/survey/?import=1",
        {"node": "BJ-001"},
        {"definition": ("d.toml", "name = 1\n"), "responses": ("a.csv", "x\n")},
    )
    assert status == 400 and "definition: missing &#x27;scales&#x27;" in page

    status, _, location = import_example(manager)
    assert status == 302 and location.startswith("/survey/BJ-001/")
    assert site.sql("SELECT count(*), min(first_row) FROM surveys_surveyresponse") == (1, 1)
    expected = analyse(
        d.with_overrides(node="BJ-001", first=FIRST, last=LAST),
        parse_responses(d, generate_csv(d, 60, 7)),
    )
    status, body = manager.get(f"/survey/BJ-001/?{SPAN}")
    page = body.decode()
    assert status == 200
    nps = expected["nps"]
    assert f"{nps['nps']:.1f} [{nps['ci'][0]:.1f}, {nps['ci'][1]:.1f}]" in page
    rel = next(x for x in expected["dimensions"] if x["name"] == "reliability")
    row = re.search(r'<tr id="dim-reliability">(.*?)</tr>', page, re.S)
    assert row is not None
    gap = rel["gap"]
    assert f"{gap['mean']:.2f} [{gap['ci'][0]:.2f}, {gap['ci'][1]:.2f}]" in row.group(1)
    assert 'id="chart-gaps"' in page and 'id="survey-chart-data"' in page
    assert 'id="survey-compare-previous"' in page and "No survey in that period" in page

    status, body = manager.get(f"/survey/BJ-001/export.csv?{SPAN}&raw=1")
    assert status == 200
    table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert table[0] == ["section", "name", "n", "value", "ci_lo", "ci_hi", "small"]
    nps_row = next(r for r in table if r[0] == "nps")
    assert float(nps_row[3]) == round(nps["nps"], 4) and nps_row[2] == str(nps["n"])
    assert manager.get(f"/survey/BJ-001/export.xlsx?{SPAN}")[0] == 200
    assert manager.get("/survey/BJ-001/export.csv?since=2001-01-01&until=2001-01-31")[0] == 404

    # beside the keypad index on the node's report, never mixed into it
    status, body = manager.get(f"/report/BJ-001/?{SPAN}")
    page = body.decode()
    assert 'id="survey-figures"' in page and 'id="survey-nps"' in page
    assert f"{nps['nps']:.1f}" in page
    status, body = manager.get("/report/BJ-002/")
    assert 'id="survey-none"' in body.decode()
    # on the overview, beside this month's cards (when the survey's period ends this month)
    page = logged_in(server.url, "bj001-admin").get("/")[1].decode()  # BJ-001's overview
    if LAST.month == TODAY.month:
        assert 'id="survey-figures"' in page and f"{nps['nps']:.1f}" in page
    else:
        assert 'id="survey-none"' in page
    # and in the month's PDF, in a table of its own
    status, pdf = manager.get(f"/report/BJ-001/monthly.pdf?month={LAST:%Y-%m}")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert status == 200 and "Survey" in text and f"{nps['nps']:.1f} [" in text, text[-800:]
    assert f"{gap['mean']:.2f} [{gap['ci'][0]:.2f}, {gap['ci'][1]:.2f}]" in text
    # the API gives the stored report
    status, answer = call(
        server.url, f"/api/v1/surveys/report?node=BJ-001&{SPAN}", site.tokens["bj-viewer"]
    )
    assert status == 200 and answer["respondents"] == 60
    assert answer["report"]["nps"]["nps"] == nps["nps"]
    status, _ = call(
        server.url, f"/api/v1/surveys/report?node=BJ-001&{SPAN}", site.tokens["sh-manager"]
    )
    assert status == 403
    # permissions as for reports
    assert logged_in(server.url, "sh-manager").get(f"/survey/BJ-001/?{SPAN}")[0] == 403
    assert logged_in(server.url, "s001").get(f"/survey/BJ-001/?{SPAN}")[0] == 403


def test_return_visits_from_a_rating_and_the_api(site: Site, server: Server) -> None:
    upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 1, 1), rating("K1", 2, 5)])
    manager = logged_in(server.url, "bj-manager")
    status, body = manager.get("/ratings/BJ-001/")
    page = body.decode()
    links = re.findall(r'class="return-visit" href="([^"]+)"', page)
    assert len(links) == 1 and "seq=1" in links[0]  # the 1, not the 5
    viewer = logged_in(server.url, "bj-viewer")
    assert 'class="return-visit"' not in viewer.get("/ratings/BJ-001/")[1].decode()
    url = links[0].replace("&amp;", "&")
    assert manager.get(url)[0] == 200
    assert viewer.get(url)[0] == 403
    now = time.strftime("%Y-%m-%dT%H:%M")
    form = {
        "serial": "K1",
        "seq": "1",
        "contacted_at": now,
        "channel": "phone",
        "outcome": "resolved",
        "satisfaction_after": "4",
        "note": "apologised",
    }
    status, body = manager.post("/returnvisits/BJ-001/new", {**form, "channel": "pigeon"})
    assert status == 400  # a form error, nothing stored
    assert site.sql("SELECT count(*) FROM surveys_returnvisit") == (0,)
    assert manager.post("/returnvisits/BJ-001/new", form)[0] == 302
    assert manager.post("/returnvisits/BJ-001/new", {**form, "seq": "99"})[0] == 404
    status, body = manager.get("/returnvisits/BJ-001/")
    page = body.decode()
    assert status == 200 and page.count('class="visit"') == 1 and "apologised" in page
    # through the API: a late one (contacted three days after the rating)
    late = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3 * 86400))
    status, answer = call(
        server.url,
        "/api/v1/surveys/returnvisits",
        site.tokens["bj-manager"],
        {
            "serial": "K1",
            "journal_seq": 1,
            "contacted_at": late,
            "channel": "sms",
            "outcome": "no_answer",
        },
    )
    assert status == 201 and answer["on_time"] is False and answer["branch"] == "BJ-001"
    status, answer = call(
        server.url,
        "/api/v1/surveys/returnvisits",
        site.tokens["bj-viewer"],
        {
            "serial": "K1",
            "journal_seq": 1,
            "contacted_at": late,
            "channel": "sms",
            "outcome": "no_answer",
        },
    )
    assert status == 403
    status, answer = call(
        server.url,
        "/api/v1/surveys/returnvisits",
        site.tokens["bj-manager"],
        {"contacted_at": late, "channel": "sms", "outcome": "reached"},
    )
    assert status == 400
    for path in ("?until=9999-12-31", "?since=1900-01-01"):  # outside the server's dates
        status, answer = call(
            server.url, f"/api/v1/surveys/returnvisits{path}", site.tokens["bj-viewer"]
        )
        assert status == 400 and "2099-12-31" in answer["detail"]
    status, answer = call(
        server.url,
        "/api/v1/surveys/returnvisits",
        site.tokens["bj-manager"],
        {
            "serial": "K1",
            "journal_seq": 1,
            "contacted_at": "9999-12-31T23:59:59",
            "channel": "sms",
            "outcome": "no_answer",
        },
    )
    assert status == 400
    until = (TODAY + timedelta(days=4)).isoformat()
    status, answer = call(
        server.url, f"/api/v1/surveys/returnvisits?node=BJ&until={until}", site.tokens["bj-viewer"]
    )
    assert status == 200
    assert answer["counts"] == [
        {
            "code": "BJ-001",
            "name": "朝阳支行",
            "visits": 2,
            "on_time": 1,
            "on_time_rate": 0.5,
            "reached": 1,
            "satisfaction_n": 1,
            "satisfaction_mean": 4.0,
        }
    ]
    status, body = manager.get(f"/returnvisits/BJ-001/export.csv?until={until}&raw=1")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert status == 200 and len(rows) == 2
    assert {r["on_time"] for r in rows} == {"True", "False"}
    status, _ = call(
        server.url, "/api/v1/surveys/returnvisits?node=BJ-001", site.tokens["sh-manager"]
    )
    assert status == 403
