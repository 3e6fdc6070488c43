"""What flowfs holds on disk, and what a listing tells without a request
(issue 13, items 7 and 8c), over a real flowfs mount of a real flowsim:

- the snapshots' rendered files (deleted, held open) are bounded by
  -o snapshot_max=: reading day after day, the bytes held, as README.txt
  says them and as /proc/<flowfs>/fd shows them, stay under the bound plus
  one snapshot; a dropped day read again serves the bytes its SHA256SUMS
  promised, without a request; a bad size is refused with a message;
- in ls -l of an address folder, a day the cache holds whole has the time
  it was fetched, the others their midnight, and the listing asks the
  collector nothing.

Run:  /usr/bin/python3 -m pytest tests/integration/test_disk.py -q
"""

import hashlib
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import sim_args, url_of
from mount import progress, require_flowfs, run

MIB = 1 << 20
SUBJECT = "10.0.1.10"   # web-1: about 5,000 flows, 5 MiB of files, a day
# the scan's day (2026-11-27) is seven times larger: left out
DAYS = ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-28"]


@pytest.fixture(scope="module")
def dsim(make_module_sim, token_file):
    """The module's collector: the default scenario, clock frozen."""
    return make_module_sim(*sim_args(token_file))


def flows_requests(sim):
    return sum(sim.counters().get("endpoints", {})
               .get("/api/v1/flows", {}).values())


def api_counts(counters):
    """The sim's requests by endpoint, but its own /_sim ones."""
    return {k: v for k, v in counters.get("endpoints", {}).items()
            if not k.startswith("/_sim")}


def midnight(day):
    d = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    return int(d.timestamp())


def readme_held(m):
    """README.txt's figures: (folders, MiB held, MiB at most)."""
    text = m.path("README.txt").read_text()
    g = re.search(r"^Snapshots: (\d+) folders?, ([\d.]+) MiB on disk .*"
                  r"at most ([\d.]+) MiB \(-o snapshot_max=\)$", text, re.M)
    assert g, f"README.txt does not say what the snapshots hold:\n{text}"
    return int(g.group(1)), float(g.group(2)), float(g.group(3))


def fd_held(m):
    """The sizes of the deleted files in the mount's snapshot directory
    that flowfs holds open, summed, from /proc/<pid>/fd."""
    fds = Path(f"/proc/{m.proc.pid}/fd")
    total = 0
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
            size = os.stat(fd).st_size
        except OSError:
            continue            # closed meanwhile
        if target.startswith(str(m.cache) + "/snap-") and \
                target.endswith(" (deleted)"):
            total += size
    return total


def test_snapshots_bounded_by_bytes(mounts, dsim):
    """README: the open snapshots hold at most snapshot_max bytes (a
    snapshot in use may pass it); the least recently used is dropped, said
    in the log, and rendered again identically from the cache."""
    m = mounts(url=url_of(dsim), opts=["snapshot_max=8M"])
    assert readme_held(m) == (0, 0.0, 8.0)
    first = m.path(SUBJECT, DAYS[0])
    # SHA256SUMS renders the six other files, and promises their bytes
    sums = (first / "SHA256SUMS").read_text()
    biggest = 0
    for day in DAYS:
        d = m.path(SUBJECT, day)
        (d / "SHA256SUMS").read_bytes()
        size = sum((d / n).stat().st_size for n in os.listdir(d))
        biggest = max(biggest, size)
        held = fd_held(m)
        folders, said, bound = readme_held(m)
        assert held <= 8 * MIB + biggest, \
            f"after {day}: {held / MIB:.1f} MiB of snapshots held open, " \
            f"over 8 MiB + one snapshot ({biggest / MIB:.1f} MiB)"
        assert abs(said - held / MIB) <= 0.1, \
            f"README.txt says {said} MiB, /proc shows {held / MIB:.1f} MiB"
        assert 1 <= folders <= 2, folders
    log = (m.cache / "flowfs.log").read_text()
    assert re.search(r"/2026-11-23: snapshot dropped for space: "
                     r"[\d.]+ MiB; snapshots now hold [\d.]+ MiB of at most "
                     r"8.0 MiB", log), log[-3000:]
    text = progress(first)[0]
    assert "state: ready" in text and "dropped" in text, text
    # the first day again, its files never read before: what SHA256SUMS said
    before = flows_requests(dsim)
    for line in sums.splitlines():
        digest, name = line.split("  ")
        data = (first / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, \
            f"{name} rendered again differs from what SHA256SUMS promised"
    assert "generation 2, final" in progress(first)[0], progress(first)[0]
    assert flows_requests(dsim) == before, "rendered again with a request"
    assert fd_held(m) <= 8 * MIB + biggest


@pytest.mark.parametrize("bad", ["abc", "0", "12X", "1.5G", "-5M", "100",
                                 "8MB2", ""])
def test_bad_snapshot_max_refused(bad, dsim, token_file, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run([str(require_flowfs()), "-f", "-o",
             f"token_file={token_file},cache={tmp_path / 'cache'},"
             f"snapshot_max={bad}", url_of(dsim), str(mnt)], timeout=30)
    assert r.returncode != 0
    assert f"snapshot_max={bad} is not a size".encode() in r.stderr, r.stderr
    assert b"K, M or G" in r.stderr, r.stderr
    assert not os.path.ismount(mnt)


def test_cached_day_has_its_fetch_time(mounts, dsim):
    """README: in ls -l of an address folder, a day folder's time is when
    it was fetched when the cache holds it whole, else its midnight; the
    listing asks the collector nothing."""
    m = mounts(url=url_of(dsim))
    t0 = int(time.time())
    (m.path(SUBJECT, "2026-11-25") / "flows.csv").read_bytes()
    t1 = int(time.time()) + 1
    before = dsim.counters()
    r = run(["ls", "-l", "--time-style=+%s", str(m.path(SUBJECT))], check=True)
    times = {}
    for line in r.stdout.decode().splitlines()[1:]:
        f = line.split()
        times[f[-1]] = int(f[-2])
    assert times["2026-11-25"] >= t0 and times["2026-11-25"] <= t1, \
        f"the fetched day's time {times['2026-11-25']} is not its fetch " \
        f"time (between {t0} and {t1})"
    for day in ["2026-11-24", "2026-11-26", "2026-11-29"]:
        assert times[day] == midnight(day), (day, times[day])
    assert len(times) >= 30 and all(
        t == midnight(d) for d, t in times.items() if d != "2026-11-25"), times
    after = dsim.counters()
    assert api_counts(after) == api_counts(before), \
        "the listing asked the collector"
    # stat says the same as the listing
    assert int(os.stat(m.path(SUBJECT, "2026-11-25")).st_mtime) == \
        times["2026-11-25"]
