"""`ratepad sim` suites: scenario folders with expectations, JUnit XML, reports, --jobs."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SUITE = Path(__file__).parent / "scenarios" / "suite"
BASE = json.loads((SUITE / "prompted_press.json").read_text())


def sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", "sim", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_folder_runs_as_a_suite_with_junit(tmp_path: Path) -> None:
    junit = tmp_path / "suite.xml"
    out = sim(str(SUITE), "--junit", str(junit))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 4 and all(line.startswith("PASS ") for line in lines), lines
    assert out.stderr.strip() == "# 4 passed, 0 failed"
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuite" and root.get("tests") == "4" and root.get("failures") == "0"
    names = [case.get("name") for case in root.iter("testcase")]
    assert names == [
        "faulty link",
        "power cut during a journal write",
        "prompted press",
        "repeat guard",
    ]


def test_a_failing_expectation_fails_the_run_and_says_which_and_why(tmp_path: Path) -> None:
    bad = {**BASE, "name": "wrong score", "expect": {"scores": [4], "ratings": {"min": 2}}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    junit = tmp_path / "j.xml"
    out = sim(str(SUITE / "repeat_guard.json"), str(tmp_path / "bad.json"), "--junit", str(junit))
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].startswith("PASS repeat guard")
    assert lines[1].startswith("FAIL wrong score")
    assert "expect.ratings: expected at least 2, got 1" in lines[1]
    assert "expect.scores: expected [4], got [5]" in lines[1]
    assert out.stderr.strip() == "# 1 passed, 1 failed"
    failure = ET.parse(junit).getroot().find("testcase[@name='wrong score']/failure")
    assert failure is not None and "expect.ratings" in (failure.get("message") or "")


def test_an_invalid_file_is_a_junit_error_and_the_suite_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a_good.json").write_text(json.dumps(BASE))
    (tmp_path / "b_broken.json").write_text('{"seed": 1,')
    (tmp_path / "c_good.json").write_text(json.dumps({**BASE, "name": "again"}))
    junit = tmp_path / "j.xml"
    out = sim(str(tmp_path), "--junit", str(junit))
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["PASS", "ERROR", "PASS"], lines
    assert "b_broken.json" in lines[1] and out.stderr.strip() == "# 2 passed, 0 failed, 1 invalid"
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "0", "1")
    error = root.find("testcase[@name='b_broken']/error")
    assert error is not None and "JSON" in (error.get("message") or "")


@pytest.mark.parametrize(
    ("expect", "says"),
    [
        ({"counters": {"repeats": 2}}, "expect.counters.repeats: expected 2, got 0"),
        ({"counters": {"bogus": 1}}, "expect.counters.bogus: no such counter"),
        ({"staff": {"S002": 1}}, "expect.staff.S002: expected 1, got 0"),
        ({"flags": {"unprompted": {"min": 1}}}, "expect.flags.unprompted: expected at least 1"),
        ({"prompted": 0}, "expect.prompted: expected 0, got 1"),
        ({"ratings_per_device": {"K1": {"max": 0}}}, "expected at most 0, got 1"),
        ({"stats": {"power_cuts": 1}}, "expect.stats.power_cuts: expected 1, got 0"),
    ],
)
def test_each_kind_of_expectation_can_fail(
    tmp_path: Path, expect: dict[str, Any], says: str
) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps({**BASE, "expect": expect}))
    out = sim(str(path), "--json")
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout.splitlines()[0])["score"] == 5  # the ratings still print
    assert says in out.stderr.splitlines()[-1], out.stderr


def test_expectations_that_see_loss_duplicates_and_times(tmp_path: Path) -> None:
    """A rating whose time is not exact (made in a boot the host never saw) fails
    times_exact; nothing was lost or stored twice."""
    scenario = {
        **BASE,
        "events": [
            {"at_ms": 500, "device": "K1", "do": "press", "score": 2},
            {"at_ms": 2000, "device": "K1", "do": "power_cycle"},
            {"at_ms": 3000, "device": "K1", "do": "connect"},
        ],
        "expect": {"times_exact": True, "no_loss": True, "no_duplicates": True},
    }
    path = tmp_path / "late.json"
    path.write_text(json.dumps(scenario))
    out = sim(str(path))
    assert out.returncode == 1
    assert "expect.times_exact: 1 of 1 ratings" in out.stderr, out.stderr
    assert "no_loss" not in out.stderr and "no_duplicates" not in out.stderr


def test_jobs_give_the_same_outcome_as_one_process(tmp_path: Path) -> None:
    one = sim(str(SUITE), "--json")
    two = sim(str(SUITE), "--json", "--jobs", "2")
    assert one.returncode == two.returncode == 0
    assert one.stdout == two.stdout and len(one.stdout.splitlines()) == 4


def test_suite_report_is_one_self_contained_page(tmp_path: Path) -> None:
    report = tmp_path / "suite.html"
    assert sim(str(SUITE), "--report", str(report)).returncode == 0
    page = report.read_text()
    assert page.count("<svg") == 3  # ratings per hour, scores, latency
    assert "<script" not in page and "src=" not in page and "<link" not in page
    assert "prompted press" in page and "Satisfaction index" in page
    data = json.loads(report.with_suffix(".json").read_text())
    assert [s["passed"] for s in data["scenarios"]] == [True] * 4
    assert data["ratings"] == 45 and data["keypads"] == 5
    # index and CSAT labelled apart; prompts counted, so the response rate is there too
    assert "Satisfaction index (mean level, 0-100)" in page and "(CSAT %)" not in page
    assert "CSAT (% of prompted ratings in the top two)" in page
    prompts = sum(
        1
        for path in SUITE.glob("*.json")
        for event in json.loads(path.read_text())["events"]
        if event["do"] == "prompt"
    )
    assert prompts > 0 and data["prompts"] == prompts
    assert data["response_rate"] == round(100 * data["prompted_ratings"] / prompts, 1)


def test_schema_is_published_and_every_suite_file_follows_it() -> None:
    out = sim("--schema")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted(SUITE.glob("*.json")):
        jsonschema.validate(json.loads(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"devices": [{"id": "K1"}], "expect": {"score": 1}}, schema)
