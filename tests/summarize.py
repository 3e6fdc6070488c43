#!/usr/bin/python3
"""Count the test cases of every suite in the given build folders and print
the closing line 'N passed, N failed[, N skipped]'.

Each suite leaves a JUnit report in BUILD/test-results/ (cmocka and pytest
write them; tests/fuzz/run.py writes one case a fuzz target, in build-fuzz/).  A meson test that failed without a report saying so (a
crash, a timeout, a sanitizer abort) counts as one more failure, so nothing
that broke is ever hidden.  Exit status 1 when anything failed or nothing ran.
"""
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def count_report(report):
    """(passed, failed, skipped) of one JUnit report; an unreadable one is
    one failure."""
    passed = failed = skipped = 0
    try:
        root = ET.parse(report).getroot()
    except ET.ParseError as e:
        print(f"summarize: {report}: unreadable report ({e})", file=sys.stderr)
        return 0, 1, 0
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def count_reports(build):
    passed = failed = skipped = 0
    for report in sorted((build / "test-results").glob("*.xml")):
        p, f, s = count_report(report)
        passed, failed, skipped = passed + p, failed + f, skipped + s
    return passed, failed, skipped


def report_says_failed(build, name):
    """Does the report of the meson test 'name' ("flowfs:unit / plan" writes
    unit-plan.xml, "flowfs:tsan / tsan" tsan.xml) count a failure?"""
    short = name.split(" / ")[-1]
    for stem in (short, f"unit-{short}"):
        report = build / "test-results" / f"{stem}.xml"
        if report.exists():
            return count_report(report)[1] > 0
    return False


def meson_failures(build):
    log = build / "meson-logs" / "testlog.json"
    bad = []
    if not log.exists():
        return ["(no meson test log)"]
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL"):
            bad.append(entry.get("name", "?"))
    return bad


def main(dirs):
    tp = tf = ts = 0
    for d in dirs:
        build = Path(d)
        p, f, s = count_reports(build)
        bad = meson_failures(build)
        f += sum(1 for name in bad if not report_says_failed(build, name))
        print(f"{d}: {p} passed, {f} failed, {s} skipped"
              + (f" (meson: {', '.join(bad)} failed)" if bad else ""))
        tp, tf, ts = tp + p, tf + f, ts + s
    print(f"{tp} passed, {tf} failed, {ts} skipped")
    return 1 if tf or tp == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
