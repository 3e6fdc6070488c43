"""Issue 13, items 4 to 6: flowfs tells the user what happened.

- `.progress` says what is true: the state (ready, live, failed, ...),
  where the folder came from (the collector, or the cache after a
  remount), its flows (the CSV's rows, not the records received), the
  windows, the time the fetch took and when it finished; and it stops
  counting once the folder is ready.
- A live folder (today's) says so in summary.txt and query.json: complete
  up to a time, refreshed at most every live_ttl seconds; the hours after
  that time are "not yet exported", not 0.
- flowfs.log is a record of what was done: one line per query end, naming
  the folder's path, its flows and requests; no epoch milliseconds and no
  hashes; -o log_level= gives less or more, and a bad level is refused; a
  query the unmount interrupts is logged as such.

Each runs a real flowfs over a real flowsim (the frozen clock of
conftest.NOW_ISO) on 127.0.0.1.
"""

import csv
import io
import json
import re
import secrets
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import NOW_MS, sim_args, url_of
from mount import (check_failed_progress, progress, require_flowfs,
                   require_fuse, run, wait_for)

HOUR = 3600 * 1000
DAY = 24 * HOUR
TODAY0 = NOW_MS - NOW_MS % DAY
EPOCH_MS = re.compile(r"\b1[0-9]{12}\b")
HASH16 = re.compile(r"\b[0-9a-f]{16}\b")
ISO_OFFSET = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?(Z|[+-]\d\d:\d\d)"


def day_text(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d")


YESTERDAY = day_text(TODAY0 - DAY)
TODAY = day_text(TODAY0)


@pytest.fixture(scope="module")
def token():
    """The mounts' token (the module's sim 'sim', conftest's default one
    with an export delay of 120 s, checks none; the failing one does)."""
    require_fuse()
    return "flowfs-test-" + secrets.token_hex(16)


def kv(text):
    """.progress as a dict of its 'key: value' lines."""
    return dict(ln.split(": ", 1) for ln in text.splitlines() if ": " in ln)


def csv_rows(path):
    data = Path(path).read_text()
    return len(list(csv.reader(io.StringIO(data)))) - 1


def log_text(m):
    return (m.cache / "flowfs.log").read_text(errors="replace")


def query_lines(m, folder):
    """The log's lines that end a query of folder (its path)."""
    return [ln for ln in log_text(m).splitlines()
            if re.search(rf"flowfs\[\d+\]: {re.escape(folder)}: "
                         r"(ready|failed|interrupted)", ln)]


def check_log_clean(m):
    """No epoch milliseconds and no 16-hex hash anywhere in the log."""
    text = log_text(m)
    assert not EPOCH_MS.search(text), EPOCH_MS.search(text)[0] + "\n" + text
    assert not HASH16.search(text), HASH16.search(text)[0] + "\n" + text


def test_progress_says_what_is_true(mounts, sim):
    """A fetched folder: ready, from the collector, its flows the CSV's
    rows, every planned window done, took and finished, nothing that goes
    on counting.  After a remount on the same cache: from the cache, the
    same flows, no window asked.  The log has one line for each query's
    end, naming the folder, its flows and requests."""
    m = mounts(url=url_of(sim))
    folder = f"/10.0.1.11/{YESTERDAY}"
    d = m.path("10.0.1.11", YESTERDAY)
    rows = csv_rows(d / "flows.csv")
    assert rows > 1000
    first, _ = progress(d)
    p = kv(first)
    assert p["state"] == "ready", first
    assert p["source"] == "collector", first
    assert int(p["flows"]) == rows, first
    w = re.fullmatch(r"(\d+) done of (\d+) planned", p["windows"])
    assert w and int(w[1]) == int(w[2]) > 0, first
    assert re.fullmatch(r"\d+\.\d s", p["took"]), first
    assert re.fullmatch(ISO_OFFSET, p["finished"]), first
    assert "elapsed" not in p, first
    time.sleep(1.5)
    again, _ = progress(d)
    assert again == first, f"{first}\n----\n{again}"

    lines = query_lines(m, folder)
    assert len(lines) == 1, lines
    assert re.search(rf": ready: {rows} flows, {p['requests']} requests, "
                     rf"\d+ retries, \d+\.\d s, gaps none, source collector$",
                     lines[0]), lines[0]
    check_log_clean(m)
    cache = m.cache
    m.stop()

    m2 = mounts(url=url_of(sim), cache=cache, name="again")
    d2 = m2.path("10.0.1.11", YESTERDAY)
    assert csv_rows(d2 / "flows.csv") == rows
    text, _ = progress(d2)
    p2 = kv(text)
    assert p2["state"] == "ready", text
    assert p2["source"] == "cache", text
    assert int(p2["flows"]) == rows, text
    assert p2["windows"] == "none asked (all in the cache)", text
    assert p2["requests"] == "0", text
    lines = query_lines(m2, folder)
    assert len(lines) == 2, lines       # one per mount, the same log
    assert re.search(rf": ready: {rows} flows, 0 requests, .* source cache$",
                     lines[1]), lines[1]
    check_log_clean(m2)


def test_never_asked_folder_stays_so(mounts, sim):
    """.progress of a folder never read says so and makes no folder."""
    m = mounts(url=url_of(sim))
    text, _ = progress(m.path("10.0.1.10", YESTERDAY))
    p = kv(text)
    assert p["state"] == "idle", text
    assert "never asked" in p, text
    assert p["mount"].endswith("0 folders held"), text


def test_failed_folder_says_failed(mounts, make_sim, token_file):
    """A query that fails (every answer a 500): .progress says failed and
    why, its window named in ISO 8601; the log's line names the folder."""
    sim = make_sim(*sim_args(token_file, "--fail-500", "1"))
    m = mounts(url=url_of(sim), opts=["retries=1"])
    mounts.allow(r"failed|500")
    folder = f"/10.0.1.10/{YESTERDAY}"
    d = m.path("10.0.1.10", YESTERDAY)
    r = run(["cat", str(d / "flows.csv")], timeout=60)
    assert r.returncode != 0
    text = check_failed_progress(d, r"500")
    err = kv(text)["error"]
    assert re.search(rf"window {ISO_OFFSET} to {ISO_OFFSET} failed 2 times", err), err
    assert not EPOCH_MS.search(text), text
    lines = query_lines(m, folder)
    assert len(lines) == 1 and ": failed after " in lines[0], lines
    assert "2 requests, 1 retries" in lines[0] and "readers get EIO" in lines[0], lines
    check_log_clean(m)


def test_live_folder_says_live(mounts, sim):
    """Today's folder: summary.txt and query.json say live, complete up to
    the collector's export edge, refreshed at most every live_ttl seconds;
    the hours after it are not yet exported; .progress says live."""
    m = mounts(url=url_of(sim), opts=["live_ttl=45"])
    d = m.path("10.0.1.40", TODAY)
    rows = csv_rows(d / "flows.csv")
    q = json.loads((d / "query.json").read_text())
    assert q["live"] is True and q["refresh_s"] == 45, q
    # the frozen clock is 12:00, the export delay 120 s: complete up to
    # 11:58 and the seconds since the mount's probe
    assert re.fullmatch(r"2026-11-29T11:58:\d\d\.\d{3}Z", q["complete_up_to"]), q
    assert q["status"] == (f"live, complete up to {q['complete_up_to']}, "
                           "refreshed at most every 45 s"), q
    assert q["complete"] is True, q
    assert q["flows"] == rows

    summary = (d / "summary.txt").read_text()
    assert f"  status          {q['status']}\n" in summary, summary
    hours = {ln.split()[0]: ln for ln in summary.splitlines()
             if re.match(r"  2026-11-29T\d\d:00Z ", ln)}
    assert len(hours) == 24, summary
    for h in range(12, 24):
        ln = hours[f"2026-11-29T{h:02d}:00Z"]
        assert "not yet exported" in ln, ln
    for h in range(0, 11):
        assert "exported" not in hours[f"2026-11-29T{h:02d}:00Z"], summary
    assert "(exported up to 2026-11-29T11:58:" in hours["2026-11-29T11:00Z"]
    assert 'id="not-exported"' in (d / "timeline.svg").read_text()

    text, _ = progress(d)
    p = kv(text)
    assert p["state"] == "live" and p["status"] == q["status"], text
    line = query_lines(m, f"/10.0.1.40/{TODAY}")
    assert len(line) == 1 and line[0].endswith(q["status"]), line
    check_log_clean(m)


def test_log_level_error_leaves_out_the_query_lines(mounts, sim):
    """log_level=error: no mount line, no query line; only failures."""
    m = mounts(url=url_of(sim), opts=["log_level=error"])
    csv_rows(m.path("10.0.1.10", YESTERDAY) / "flows.csv")
    assert kv(progress(m.path("10.0.1.10", YESTERDAY))[0])["state"] == "ready"
    text = log_text(m)
    assert "mounted" not in text and ": ready: " not in text, text


def test_log_level_debug_names_each_window(mounts, sim):
    """log_level=debug: each window asked, in ISO 8601, with its folder."""
    m = mounts(url=url_of(sim), opts=["log_level=debug"])
    folder = f"/10.0.1.10/{YESTERDAY}"
    csv_rows(m.path("10.0.1.10", YESTERDAY) / "flows.csv")
    asked = [ln for ln in log_text(m).splitlines() if ": asked window " in ln]
    assert asked, log_text(m)
    for ln in asked:
        assert re.search(rf"flowfs\[\d+\]: {re.escape(folder)}: asked window "
                         rf"{ISO_OFFSET} to {ISO_OFFSET}, peer ", ln), ln
    assert len(query_lines(m, folder)) == 1
    check_log_clean(m)


def test_bad_log_level_refused(sim, token_file, tmp_path):
    """A log_level that is none of the three is refused, with its message."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run([str(require_flowfs()), "-f", "-o",
             f"token_file={token_file},cache={tmp_path / 'cache'},log_level=loud",
             url_of(sim), str(mnt)], timeout=30)
    assert r.returncode != 0
    assert b"unknown log_level 'loud' (error, info or debug)" in r.stderr, r.stderr


def test_query_interrupted_by_unmount_is_logged(mounts, make_sim, token_file):
    """A query under way when the mount goes (a stalled collector) is
    logged once, as interrupted by the unmount, with its folder."""
    sim = make_sim(*sim_args(token_file, "--stall-s", "60"))
    m = mounts(url=url_of(sim), opts=["stall_timeout=30"])
    folder = f"/10.0.1.11/{YESTERDAY}"
    d = m.path("10.0.1.11", YESTERDAY)
    sim.set_faults(stall=1)
    cat = subprocess.Popen(["cat", str(d / "flows.csv")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: kv(progress(d)[0])["state"] == "running", 10)
        assert wait_for(lambda: int(kv(progress(d)[0])["requests"]) > 0, 10)
        cat.send_signal(signal.SIGINT)      # Ctrl-C: the download goes on
        cat.wait(timeout=5)
        assert kv(progress(d)[0])["state"] == "running"
        assert m.stop() == 0, m.stderr_text()[-3000:]
    finally:
        if cat.poll() is None:
            cat.kill()
            cat.wait()
    lines = query_lines(m, folder)
    assert len(lines) == 1 and ": interrupted by the unmount after " in lines[0], \
        log_text(m)
    check_log_clean(m)
