"""Many readers at once (issue 12, items 9 and 10c): the mount-wide bound
on queries (-o max_queries, a FIFO queue shown in .progress), and a folder
table that reading .progress does not grow.

The collector's side is measured by flowsim: /_sim/counters's
flows_in_flight gauge (its peak of /flows requests being served at once)
and /_sim/truth for every folder.  The mount's side is .progress, whose
last line counts the mount's queries and folders.

Run:  /usr/bin/python3 -m pytest tests/integration/test_many_readers.py -q
      (FLOWSIM, FLOWFETCH and FLOWFS as tests/integration/meson.build sets
      them)
"""

import os
import re
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import digest_of, sim_args, url_of
from mount import QUICK_S, progress, require_flowfs, require_fuse, run, \
    wait_for

SEC = 1000
DAY = 86400 * SEC

# The files of a query folder (README.md, the tree).
FILES = ["flows.csv", "flows.ndjson", "flows.sqlite", "summary.txt",
         "timeline.svg", "query.json", "SHA256SUMS"]

# victim-1: 2,000 flows a day, and the flood of 15,000 flows in one
# millisecond yesterday
HOST = "10.0.1.40"
# the 30 days before today (2026-11-29, live), all within the data
DAYS = [(datetime(2026, 11, 29, tzinfo=timezone.utc) - timedelta(days=i))
        .strftime("%Y-%m-%d") for i in range(30, 0, -1)]


@pytest.fixture(scope="module", autouse=True)
def _prerequisites():
    require_fuse()
    require_flowfs()


def ms_of(day):
    d = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    return int(d.timestamp()) * 1000


def csv_ids(data):
    """The flowId column of flows.csv (the last column; ids hold no comma
    or quote)."""
    lines = data.decode().splitlines()
    assert lines and lines[0].endswith(",flowId"), lines[:1]
    return [ln.rsplit(",", 1)[1] for ln in lines[1:]]


def mount_line(text):
    """(running, max_queries, queued, folders) from .progress's last line,
    'mount: R of M queries running, Q queued, F folders held'."""
    m = re.search(r"^mount: (\d+) of (\d+) queries running, (\d+) queued, "
                  r"(\d+) folders held$", text, re.M)
    assert m, f".progress has no 'mount:' line:\n{text}"
    return tuple(int(x) for x in m.groups())


def queue_position(text):
    """(position, length) when .progress says the folder is queued."""
    if "state: queued" not in text:
        return None
    m = re.search(r"^position: (\d+) of (\d+) in the queue$", text, re.M)
    assert m, f"a queued folder without its position:\n{text}"
    return int(m.group(1)), int(m.group(2))


# ---- item 9: at most max_queries queries at once, the rest queued -------------

def test_stat_30_folders_at_once_is_bounded(mounts, make_sim, token_file):
    """stat(1) of every file of 30 day folders at once (what ls -l, du or
    an indexer do): flowsim never serves more than max_queries x
    max_inflight flow requests at once, the waiting folders say 'queued'
    with their place, and every folder is exact."""
    max_queries, max_inflight = 2, 4
    # a cap of 250 makes each day ten requests or more (the flood day
    # hundreds), each slowed by 50 ms so that a query keeps its
    # max_inflight requests in flight
    sim = make_sim(*sim_args(token_file, "--days", "31", "--max-records",
                             "250", "--slow", "1", "--slow-ms", "50"))
    m = mounts(url=url_of(sim), opts=[f"max_queries={max_queries}"])
    sim.reset_counters()
    paths = [m.path(HOST, d, f) for d in DAYS for f in FILES]
    errors = []
    go = threading.Barrier(len(paths) + 1)

    def stat(p):
        go.wait()
        try:
            os.stat(p)
        except OSError as e:
            errors.append(f"{p}: {e}")

    th = [threading.Thread(target=stat, args=(p,)) for p in paths]
    for t in th:
        t.start()
    go.wait()
    t0 = time.monotonic()
    now_max, texts, slow = 0, [], []
    while any(t.is_alive() for t in th) and time.monotonic() - t0 < 300:
        now_max = max(now_max, sim.counters()["flows_in_flight"]["now"])
        for d in DAYS[::6]:
            text, took = progress(m.path(HOST, d))
            texts.append((d, text))
            if took >= QUICK_S:
                slow.append(took)
        time.sleep(0.05)
    for t in th:
        t.join(30)
    took = time.monotonic() - t0
    assert not any(t.is_alive() for t in th), "a stat hung"
    assert not errors, errors[:5]

    gauge = sim.counters()["flows_in_flight"]
    requests = sum(sim.counters()["endpoints"]["/api/v1/flows"].values())
    bound = max_queries * max_inflight
    print(f"30 folders stat'ed at once in {took:.1f} s: {requests} flow "
          f"requests, at most {gauge['peak']} in flight (polled: {now_max}; "
          f"bound {bound})")
    assert gauge["peak"] <= bound, \
        f"flowsim served {gauge['peak']} flow requests at once, more than " \
        f"max_queries x max_inflight = {bound}"
    assert now_max <= bound
    assert gauge["now"] == 0, gauge
    assert not slow, f".progress took {max(slow):.2f} s"

    # .progress while they waited: the queue and its places
    queued_seen, lines = {}, []
    for d, text in texts:
        pos = queue_position(text)
        if pos:
            queued_seen[d] = pos
        running, mq, queued, _ = mount_line(text)
        assert mq == max_queries and running <= max_queries, text
        lines.append((running, queued))
    print(f"queued folders seen: {queued_seen}; the most queued at once: "
          f"{max(q for _, q in lines)}")
    assert queued_seen, "no folder was ever seen queued"
    assert all(1 <= p <= n for p, n in queued_seen.values()), queued_seen
    assert max(q for _, q in lines) >= 10, \
        "the folders' readers waited, and the queue held few of them"

    # every folder is exact, and done
    for d in DAYS:
        ids = csv_ids(m.path(HOST, d, "flows.csv").read_bytes())
        t = sim.truth(HOST, ms_of(d), ms_of(d) + DAY)
        assert len(ids) == t["count"] and len(set(ids)) == len(ids), \
            (d, len(ids), t["count"])
        assert digest_of(ids) == t["digest"], f"{d}: not the truth"
        text = progress(m.path(HOST, d))[0]
        assert "state: ready" in text, text
    assert mount_line(text)[:3] == (0, max_queries, 0), text


def reader(path):
    return subprocess.Popen(["cat", str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def test_queue_is_fifo_and_ctrl_c_leaves_it(mounts, make_sim, token_file):
    """max_queries=1 over a slow collector: folders asked one after the
    other wait in the order they were asked, each .progress gives its
    place, and a reader's Ctrl-C takes its folder out of the queue (it is
    never asked of the collector)."""
    sim = make_sim(*sim_args(token_file, "--slow", "1", "--slow-ms", "1500"))
    m = mounts(url=url_of(sim), opts=["max_queries=1"])
    days = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23",
            "2026-11-24"]     # 10.0.1.40: one request a day
    folders = [m.path(HOST, d) for d in days]
    sim.reset_counters()
    procs, done = [], {}
    try:
        for i, f in enumerate(folders):
            procs.append(reader(f / "flows.csv"))
            if i == 0:
                want = lambda t: "state: running" in t  # noqa: E731
            else:
                want = lambda t, i=i: queue_position(t) == (i, i)  # noqa
            assert wait_for(lambda: want(progress(f)[0]), 10, 0.02), \
                progress(f)[0]
        texts = [progress(f)[0] for f in folders]
        assert "state: running" in texts[0], texts[0]
        for i in range(1, 5):
            assert queue_position(texts[i]) == (i, 4), texts[i]
        assert mount_line(texts[0])[:3] == (1, 1, 4), texts[0]

        # Ctrl-C of the second queued reader: its folder leaves the queue
        procs[2].send_signal(signal.SIGINT)
        procs[2].wait(timeout=2)
        text = progress(folders[2])[0]
        assert "state: idle" in text and "position:" not in text, text
        assert queue_position(progress(folders[3])[0]) == (2, 3)
        assert queue_position(progress(folders[4])[0]) == (3, 3)

        t0 = time.monotonic()
        while len(done) < 4 and time.monotonic() - t0 < 60:
            for i in (0, 1, 3, 4):
                if i not in done and procs[i].poll() is not None:
                    done[i] = time.monotonic()
            time.sleep(0.02)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    assert all(procs[i].returncode == 0 for i in (0, 1, 3, 4)), \
        [(p.returncode, p.stderr.read()) for p in procs]
    order = sorted(done, key=done.get)
    assert order == [0, 1, 3, 4], f"finished in the order {order}"
    c = sim.counters()
    assert sum(c["endpoints"]["/api/v1/flows"].values()) == 4, \
        "the folder whose reader left the queue was asked anyway"
    assert c["flows_in_flight"]["peak"] == 1, c["flows_in_flight"]
    assert "state: idle" in progress(folders[2])[0]


# ---- item 10c: .progress creates nothing ---------------------------------------

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_progress_of_1000_folders_holds_nothing(mounts, make_sim, token_file):
    """Reading .progress of 1,000 folders never asked answers 'state: idle'
    for each without a request, and leaves the mount holding no folder;
    a folder that was read is held, with its snapshot."""
    sim = make_sim(*sim_args(token_file))
    m = mounts(url=url_of(sim))
    sim.reset_counters()
    rss0 = rss_kib(m.proc.pid)
    for i in range(1000):
        text = (m.path(f"10.9.{i // 250}.{i % 250 + 1}", "2026-11-28") /
                ".progress").read_text()
        assert "state: idle" in text, text
    text = progress(m.path(HOST, "2026-11-27"))[0]
    rss1 = rss_kib(m.proc.pid)
    print(f"RSS before {rss0} KiB, after 1,000 .progress {rss1} KiB; "
          f"{text.splitlines()[-1]}")
    assert mount_line(text) == (0, 2, 0, 0), text
    assert sum(sim.counters()["endpoints"]["/api/v1/flows"].values()) == 0

    assert run(["cat", str(m.path(HOST, "2026-11-27", "flows.csv"))],
               timeout=60).returncode == 0
    text = progress(m.path(HOST, "2026-11-27"))[0]
    assert "state: ready" in text and mount_line(text) == (0, 2, 0, 1), text
