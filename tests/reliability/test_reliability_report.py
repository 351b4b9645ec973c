"""docs/reliability.md is rendered from the scenarios' figures: the five counts, per scale."""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability.report import main


def figures(scenario: str, scale: str, *, lost: int = 0, passed: bool = True) -> dict[str, object]:
    return {
        "scenario": scenario, "title": f"the {scenario}", "scale": scale, "passed": passed,
        "counts": {"deliveries_sent": 20000, "applications": 1000, "lost": lost,
                   "double_applied": 0, "http_500": 0, "orders": 1000},
        "parameters": {"orders": 1000}, "timings": {"total_s": 12.5},
        "machine": {"cores": 2, "platform": "Linux", "python": "3.11", "postgresql": "15"},
        "notes": ["a note"], "measured_at": "2026-11-26 02:00 UTC",
    }


def test_the_report_shows_each_scale_and_scenario_with_the_required_counts(
    tmp_path: Path,
) -> None:
    for scale, scenario, lost in (("full", "crash", 0), ("full", "storm", 0),
                                  ("bounded", "storm", 3)):
        folder = tmp_path / "artifacts" / scale
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{scenario}.json").write_text(json.dumps(
            figures(scenario, scale, lost=lost, passed=lost == 0)))
    (tmp_path / "artifacts" / "full" / "unrelated.json").write_text("[1, 2]")
    output = tmp_path / "reliability.md"
    main(["--artifacts", str(tmp_path / "artifacts"), "--output", str(output),
          "--findings", str(tmp_path / "none.md")])
    text = output.read_text()
    assert text.index("## Full size") < text.index("## Bounded")
    full = text[text.index("## Full size"):text.index("## Bounded")]
    assert full.index("### storm") < full.index("### crash")  # the scenarios' own order
    assert ("| scenario | deliveries sent | applications | lost | double-applied | 500s |"
            in text)
    assert "| storm | 20,000 | 1,000 | 0 | 0 | 0 | 12.5 s | pass |" in full
    assert "| storm | 20,000 | 1,000 | 3 | 0 | 0 | 12.5 s | **FAIL** |" in text
    assert "Findings" not in text


def test_the_report_lists_every_test_file_of_the_run_from_pytest_junit_xml(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "artifacts" / "full"
    folder.mkdir(parents=True)
    (folder / "storm.json").write_text(json.dumps(figures("storm", "full")))
    (folder / "junit.xml").write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest">'
        '<testcase classname="tests.reliability.test_attacks" name="a[sqlite]" time="1.5"/>'
        '<testcase classname="tests.reliability.test_attacks" name="b[sqlite]" time="2.0">'
        '<failure message="boom"/></testcase>'
        '<testcase classname="tests.reliability.test_storm" name="storm" time="99.6"/>'
        '<testcase classname="tests.reliability.test_storm" name="skip" time="0">'
        '<skipped message="no"/></testcase>'
        "</testsuite></testsuites>")
    output = tmp_path / "reliability.md"
    main(["--artifacts", str(tmp_path / "artifacts"), "--output", str(output),
          "--findings", str(tmp_path / "none.md")])
    text = output.read_text()
    assert "| test_attacks.py | 2 | 1 | **1** | 0 | 4 s |" in text
    assert "| test_storm.py | 2 | 1 | 0 | 1 | 100 s |" in text
    assert "| all | 4 | 2 | **1** | 1 | 103 s |" in text
