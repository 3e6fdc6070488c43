"""The nfdump driver on the export path (issue 14): softflowd -r replays
export.pcap as NetFlow v9 and as IPFIX over loopback UDP to nfcapd -w DIR
-b 127.0.0.1, and both fronts (flowfetch -o FILE on nfdump:DIR, flowfs
mounted on nfdump:DIR) serve exactly the flows nfdump itself prints for
the query (tests/nfdump/oracle.py), each with the exporter nfcapd saw.

nfcapd names its files by the wall clock, so the pcap is written with its
traffic ending three minutes before the test's now (mkpcap.py
--export-end): the replay's one file is then named for now, after every
flow of the range.  The range is today's (or reaches back into yesterday),
from the traffic's first minute to the minute after now.

What a late exporter does (docs/nfdump.md, "What the tools make of our
pcaps"): a replay sends two hours of flows at once, so a flow of the
pcap's first hour lies in a file about two hours after its end, where a
live exporter would have sent it within its active timeout.  The driver
reads the files up to a window's end plus the active timeout and a file's
interval, then probes the next file: with the default 300 s a range of
that first hour fails on both fronts, naming the lateness and
--active-timeout, never complete without those flows; with
--active-timeout covering the replay's lateness it finds exactly
nfdump's.
"""

import csv
import errno
import io
import json
import math
import re
import sys
import time
from pathlib import Path

import pytest

from mount import MountFactory, require_fuse, require_flowfs, run
from test_nfdump import (complete_and_copies, csv_flows, expected,
                         flowfetch, folder_of, same)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nfdump"))

import mkarchive  # noqa: E402
import mkpcap  # noqa: E402

LEAD_S = 180            # the traffic ends this long before the test's now
EXPORTS = ("v9", "ipfix")
SUBJECTS = ("10.0.1.5", "2001:db8::5")


def utc(ms):
    """Epoch ms as flowfetch's and flowfs's yyyy-mm-ddThh:mm (UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(ms // 1000))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """export.pcap ending LEAD_S before now, replayed by softflowd into the
    v9 and ipfix archives; the range over its traffic, in whole minutes."""
    gone = mkarchive.missing_tools()
    if gone:
        pytest.skip("nfdump tools missing: %s" % ", ".join(gone))
    tmp = tmp_path_factory.mktemp("nfexport")
    now_s = int(time.time())
    truth = mkpcap.build(str(tmp / "pcap"), seed=1, sessions=120, nburst=3000,
                         export_end_s=now_s - LEAD_S)["export.pcap"]
    arch = mkarchive.build(str(tmp / "pcap"), str(tmp / "archives"),
                           EXPORTS)
    first_ms = min(f["first_us"] for f in truth) // 1000
    start = first_ms // 60000 * 60000
    # the minute after now: after the replay's file, before tomorrow
    end = math.ceil((now_s + 1) / 60) * 60000
    return {"arch": arch, "start": start, "end": end, "first_ms": first_ms}


def query(data, subject, end=None):
    """test_nfdump's query tuple for SUBJECT over [start, END)."""
    s, e = data["start"], end or data["end"]
    return ("export", subject, None, "%s--%s" % (utc(s), utc(e)), utc(s),
            utc(e))


def exporters(text):
    """The exporter column of flows.csv's rows."""
    return {r["exporter"] for r in csv.DictReader(io.StringIO(text))}


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("export", EXPORTS)
def test_flowfetch_export(data, tmp_path, export, subject):
    """flowfetch nfdump:DIR over the replayed traffic: exactly nfdump's
    flows, each from the exporter 127.0.0.1."""
    arch, q = data["arch"][export], query(data, subject)
    want = expected(arch, q)
    assert len(want) > 50, "the oracle has %d flows" % len(want)
    out = tmp_path / "out.csv"
    r = flowfetch(arch, q, out, tmp_path / "cache")
    assert r.rc == 0, r.stderr
    text = out.read_text()
    same(csv_flows(text), want, "flowfetch %s %s" % (export, subject))
    assert exporters(text) == {"127.0.0.1"}


@pytest.fixture(scope="module", params=EXPORTS)
def mnt(request, data, tmp_path_factory):
    require_fuse()
    require_flowfs()
    f = MountFactory(tmp_path_factory.mktemp("flowfs"))
    m = f(url="nfdump:" + data["arch"][request.param], name="mnt",
          opts=["files_tz=UTC", "tz=UTC"])
    try:
        yield request.param, m
    finally:
        f.finish()


@pytest.mark.parametrize("subject", SUBJECTS)
def test_flowfs_export(data, mnt, tmp_path, subject):
    """flowfs on nfdump:DIR, the range folder over the replayed traffic:
    flows.csv (cat) is exactly nfdump's flows, each from the exporter
    127.0.0.1; query.json says complete, a copy checks."""
    export, m = mnt
    arch, q = data["arch"][export], query(data, subject)
    folder = folder_of(m, q)
    r = run(["cat", str(folder / "flows.csv")], text=True)
    assert r.returncode == 0, r.stderr
    want = expected(arch, q)
    assert len(want) > 50
    same(csv_flows(r.stdout), want, "flowfs %s %s" % (export, subject))
    assert exporters(r.stdout) == {"127.0.0.1"}
    complete_and_copies(folder, tmp_path)
    meta = json.loads((folder / "query.json").read_text())
    assert meta["collector"].endswith(arch), meta["collector"]


LATE = r"stored up to \d+ s after they ended.*active_timeout"


@pytest.mark.parametrize("export", EXPORTS)
def test_replay_lateness(data, tmp_path, export):
    """The traffic's first hour: its flows lie in the replay's file, about
    two hours after they ended.  With the default active timeout (300 s)
    the driver reads up to 600 s past the range, finds none of them there,
    and its probe of the next file finds them: flowfetch fails (exit 1,
    no output, the lateness and the option named) and so does flowfs
    (flows.csv EIO, .progress failed with the same cause).  With
    --active-timeout 10800 (more than the replay's lateness) both give
    exactly nfdump's flows, complete."""
    require_fuse()
    require_flowfs()
    arch = data["arch"][export]
    q = query(data, "10.0.1.5", end=data["start"] + 3600 * 1000)
    want = expected(arch, q)
    assert len(want) > 20
    out = tmp_path / "default.csv"
    r = flowfetch(arch, q, out, tmp_path / "c1")
    assert r.rc == 1, (r.rc, r.stderr)
    assert re.search(LATE, r.stderr), r.stderr
    assert "--active-timeout" in r.stderr, r.stderr
    assert not out.exists()
    out = tmp_path / "late.csv"
    r = flowfetch(arch, q, out, tmp_path / "c2", "--active-timeout", "10800")
    assert r.rc == 0, r.stderr
    same(csv_flows(out.read_text()), want, "active timeout 10800 " + export)

    f = MountFactory(tmp_path / "flowfs")
    try:
        m = f(url="nfdump:" + arch, name="dflt",
              opts=["files_tz=UTC", "tz=UTC"])
        folder = folder_of(m, q)
        try:
            open(folder / "flows.csv", "rb").close()
            e = 0
        except OSError as x:
            e = x.errno
        assert e == errno.EIO, errno.errorcode.get(e, e)
        text = (folder / ".progress").read_text()
        assert "state: failed" in text, text
        assert any(ln.startswith("error:") and re.search(LATE, ln)
                   for ln in text.splitlines()), text
        m = f(url="nfdump:" + arch, name="late",
              opts=["files_tz=UTC", "tz=UTC", "active_timeout=10800"])
        folder = folder_of(m, q)
        r = run(["cat", str(folder / "flows.csv")], text=True)
        assert r.returncode == 0, r.stderr
        same(csv_flows(r.stdout), want, "flowfs active timeout 10800 " + export)
        complete_and_copies(folder, tmp_path)
    finally:
        f.finish()
