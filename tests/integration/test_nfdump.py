"""The nfdump driver against archives the real collector tools made
(issue 14): for each query, flows.csv holds exactly the flows nfdump itself
prints for it (tests/nfdump/oracle.py: `nfdump -R DIR` with the same
selection, selected by first-seen), through both fronts: flowfetch -o FILE,
and flowfs mounted on nfdump:DIR (cat, and cp -r with sha256sum -c).

Compared per flow: protocol, 5-tuple, first and last seen to the
millisecond, packets, bytes and TCP flags, as a multiset.  The queries:
each subject's three days (IPv4 and IPv6), a subject and a peer, a range
of a few hours that cuts through the long SSH flow, one across midnight
that holds the NTP flow's later records, and the second of the burst.

The archives are built once for the module (tests/nfdump/archives.py),
in about a second; without the nfdump tools the module is skipped.
"""

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import conftest
from mount import MountFactory, require_fuse, require_flowfs, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nfdump"))

import archives  # noqa: E402
import oracle  # noqa: E402
from archives import DAY_MS, ms  # noqa: E402

PROTO = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMP6": 58}

# (name, subject, peer, folder or None, from, to): a folder is a day or a
# range as flowfs names it; from and to are flowfetch's (UTC)
DAYS = [("%s-%s" % (s, d), s, None, d, d + "T00:00", None)
        for s in ("10.0.1.5", "2001:db8::5")
        for d in ("2026-11-24", "2026-11-25", "2026-11-26")]
QUERIES = DAYS + [
    # the long SSH flow to 198.51.100.7 (10:02:30 to about 10:27) and more
    ("peer", "10.0.1.5", "198.51.100.0/24", "2026-11-24", "2026-11-24T00:00",
     None),
    # starts after the SSH flow's first record: its later records only
    ("hours", "10.0.1.5", None, "2026-11-24T10:05--2026-11-24T13:00",
     "2026-11-24T10:05", "2026-11-24T13:00"),
    # the NTP flow from 23:50 on the 24th, its records across midnight
    ("midnight", "2001:db8::5", None, "2026-11-24T23:45--2026-11-25T01:00",
     "2026-11-24T23:45", "2026-11-25T01:00"),
    # the burst: 3000 one-packet flows in one second
    ("burst", "10.0.1.5", None, "2026-11-25T12:00--2026-11-25T12:00:01",
     "2026-11-25T12:00", "2026-11-25T12:00:01"),
]


def bounds(q):
    """A query's [start, end) in UTC ms."""
    _, _, _, _, frm, to = q
    start = ms(frm + (":00" if frm.count(":") == 1 else ""))
    if to is None:
        return start, start + DAY_MS
    return start, ms(to + (":00" if to.count(":") == 1 else ""))


def key(f):
    """A flow as compared: the oracle's dict, or a row of flows.csv."""
    return (f["proto"], f["src"], f["sport"], f["dst"], f["dport"],
            f["first_ms"], f["last_ms"], f["packets"], f["bytes"], f["flags"])


def iso_ms(s):
    """flows.csv's time, '2026-11-24T10:02:30.001Z' (tz UTC)."""
    assert s.endswith("Z"), s
    return oracle.iso_ms(s[:-1])


def csv_flows(text):
    """flows.csv's rows as the oracle's flow dicts."""
    out = []
    for r in csv.DictReader(io.StringIO(text)):
        proto = PROTO.get(r["proto"]) or int(r["proto"])
        if proto in (1, 58):
            sport, dport = 0, int(r["icmpType"]) * 256 + int(r["icmpCode"])
        else:
            sport, dport = int(r["srcPort"]), int(r["dstPort"])
        out.append({
            "proto": proto, "src": r["srcAddr"], "sport": sport,
            "dst": r["dstAddr"], "dport": dport,
            "first_ms": iso_ms(r["firstSeen"]),
            "last_ms": iso_ms(r["lastSeen"]),
            "packets": int(r["packets"]), "bytes": int(r["bytes"]),
            "flags": r["flags"] if proto == 6 else "",
        })
    return out


def expected(arch, q):
    start, end = bounds(q)
    fl = oracle.flows(arch, q[1], start, end, peer=q[2])
    for f in fl:
        if f["proto"] != 6:
            f["flags"] = ""
    return fl


def same(got, want, what):
    g, w = Counter(map(key, got)), Counter(map(key, want))
    missing, extra = w - g, g - w
    assert not missing and not extra, (
        "%s: %d flows, nfdump prints %d; missing %s; extra %s" % (
            what, len(got), len(want), list(missing)[:3], list(extra)[:3]))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return archives.build(tmp_path_factory.mktemp("nfdump"))


def flowfetch(arch, q, out, cache, *extra):
    """flowfetch nfdump:ARCH, --quiet, for q of QUERIES: a conftest.Fetch."""
    _, subject, peer, _, frm, to = q
    return conftest.flowfetch("nfdump:" + arch, subject, frm, to or frm[:10],
                              out, cache=cache, peer=peer,
                              extra=["--quiet", *extra])


@pytest.mark.parametrize("q", QUERIES, ids=[q[0] for q in QUERIES])
def test_flowfetch_exact(data, tmp_path, q):
    """flowfetch nfdump:DIR writes exactly nfdump's flows, exit 0."""
    arch = data["arch"]["pcapd-day"]
    want = expected(arch, q)
    assert want, "the oracle has no flow for %s" % q[0]
    out = tmp_path / "out.csv"
    r = flowfetch(arch, q, out, tmp_path / "cache")
    assert r.rc == 0, r.stderr
    same(csv_flows(out.read_text()), want, "flowfetch " + q[0])


def test_flowfetch_split_windows(data, tmp_path):
    """A window limit of 100 (--max-records): the burst's day is split by
    time and peer, and still exact, complete (exit 0)."""
    arch = data["arch"]["pcapd-flat"]
    q = QUERIES[1]      # 10.0.1.5 on the 25th: the burst
    out = tmp_path / "out.csv"
    r = flowfetch(arch, q, out, tmp_path / "cache", "--max-records", "100")
    assert r.rc == 0, r.stderr
    same(csv_flows(out.read_text()), expected(arch, q), "split day")


def test_flowfetch_errors(data, tmp_path):
    """A missing archive and a relative path: exit 1 with the message;
    no token is asked for."""
    r = conftest.flowfetch("nfdump:" + str(tmp_path / "none"), "10.0.1.5",
                           "2026-11-24", "2026-11-24", tmp_path / "o.csv",
                           cache=tmp_path / "c")
    assert r.rc == 1
    assert "no archive at %s" % (tmp_path / "none") in r.stderr
    assert "token" not in r.stderr.lower()
    r = conftest.flowfetch("nfdump:archives/pcapd-day", "10.0.1.5",
                           "2026-11-24", "2026-11-24", tmp_path / "o.csv",
                           cache=tmp_path / "c")
    assert r.rc != 0
    assert "relative path" in r.stderr
    assert not (tmp_path / "o.csv").exists()


@pytest.fixture(scope="module")
def mnt(data, tmp_path_factory):
    require_fuse()
    require_flowfs()
    f = MountFactory(tmp_path_factory.mktemp("flowfs"))
    m = f(url="nfdump:" + data["arch"]["pcapd-day"], name="mnt",
          opts=["files_tz=UTC"])
    try:
        yield m
    finally:
        f.finish()


@pytest.mark.parametrize("q", QUERIES, ids=[q[0] for q in QUERIES])
def test_flowfs_exact(data, mnt, tmp_path, q):
    """flowfs on nfdump:DIR: flows.csv (read with cat) is exactly nfdump's
    flows, query.json says complete, and a copy checks with sha256sum -c."""
    arch = data["arch"]["pcapd-day"]
    folder = folder_of(mnt, q)
    r = run(["cat", str(folder / "flows.csv")], text=True)
    assert r.returncode == 0, r.stderr
    same(csv_flows(r.stdout), expected(arch, q), "flowfs " + q[0])
    complete_and_copies(folder, tmp_path)


def folder_of(m, q):
    """The folder of query q under mount m: SUBJECT[+PEER]/DAY-OR-RANGE."""
    return m.path(q[1] if not q[2] else "%s+%s" % (
        q[1], q[2].replace("/", "_")), q[3])


def complete_and_copies(folder, tmp_path):
    """query.json says complete (driver nfdump), and a cp -r of the folder
    checks with sha256sum -c, flows.csv's sum among them."""
    meta = json.loads((folder / "query.json").read_text())
    assert meta["complete"] is True
    assert meta["driver"] == "nfdump"
    copy = tmp_path / "case"
    run(["cp", "-r", str(folder), str(copy)], check=True)
    r = run(["sha256sum", "-c", "SHA256SUMS"], cwd=copy, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert hashlib.sha256((copy / "flows.csv").read_bytes()).hexdigest() in (
        copy / "SHA256SUMS").read_text()


def test_flowfs_info(data, mnt):
    """/collector/info.json describes the archive: nfdump's version, no cap,
    the retention from the first file, the layout and the first and last
    file with their times, files_tz."""
    info = json.loads(mnt.path("collector", "info.json").read_text())
    v = subprocess.run(["nfdump", "-V"], capture_output=True, text=True)
    assert info["product"] == "nfdump archive"
    assert info["driver"] == "nfdump"
    assert info["version"] and info["version"] in v.stdout
    assert info["max_records"] is None
    assert info["archive"] == data["arch"]["pcapd-day"]
    assert info["layout"] == "%Y/%m/%d"
    assert info["first_file"] == "2026/11/24/nfcapd.202611240000"
    assert info["first_file_time"] == "2026-11-24T00:00:00.000Z"
    assert info["last_file"].startswith("2026/11/26/nfcapd.20261126")
    assert info["last_file_time"].startswith("2026-11-26T")
    assert info["files"] == len(list(Path(data["arch"]["pcapd-day"]).rglob(
        "nfcapd.*")))
    assert info["files_tz"] == "UTC"
    assert info["active_timeout_s"] == 300
    first_day = ms("2026-11-24T00:00:00") // DAY_MS
    now_day = info["now_at_mount"] // DAY_MS
    assert info["retention_days"] == now_day - first_day
    # the subject's listing starts at the first file's day
    assert sorted(os.listdir(mnt.path("10.0.1.5")))[0] == "2026-11-24"


def test_flowfs_exporters(data, tmp_path):
    """An archive nfcapd wrote from NetFlow v9: exporters.csv names the
    exporter nfdump -E reports (sysid 1, 127.0.0.1).  (Its flows are not
    read here: nfcapd named its one file for when softflowd replayed them,
    today, days after they started: test_nfdump_export.py replays recent
    traffic and reads them, docs/nfdump.md.)"""
    require_fuse()
    f = MountFactory(tmp_path)
    try:
        m = f(url="nfdump:" + data["arch"]["v9"], opts=["files_tz=UTC"])
        rows = list(csv.DictReader(io.StringIO(
            m.path("collector", "exporters.csv").read_text())))
        assert [(r["id"], r["address"]) for r in rows] == [("1", "127.0.0.1")]
    finally:
        f.finish()


def test_flowfs_refuses_missing_archive(tmp_path):
    """flowfs does not mount a missing archive, and says why; no token is
    asked for."""
    require_fuse()
    mp = tmp_path / "mnt"
    mp.mkdir()
    r = run([str(require_flowfs()), "-f", "nfdump:" + str(tmp_path / "none"),
             str(mp), "-o", "cache=" + str(tmp_path / "c")], timeout=30,
            text=True)
    assert r.returncode != 0
    assert "no archive at %s" % (tmp_path / "none") in r.stderr
    assert "token" not in r.stderr.lower()
    assert not os.path.ismount(mp)


@pytest.fixture(scope="module")
def nfsen(data, tmp_path_factory):
    """An nfsen profile as nfsen lays it out (profiles-data/live/CHANNEL/,
    each channel an nfcapd -S 1 tree; Debian has no nfsen, so it is built
    here): channel 'upstream' the traffic of the three days, channel
    'downstream' the export pcap's first hours of the 24th, each written by
    nfpcapd.  Returns (profile directory, {channel: directory})."""
    live = tmp_path_factory.mktemp("nfsen") / "profiles-data" / "live"
    pcap = data["tmp"] / "pcap"
    chans = {"upstream": str(live / "upstream"),
             "downstream": str(live / "downstream")}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nfdump"))
    import mkarchive
    mkarchive.nfpcapd(str(pcap / "traffic.pcap"), chans["upstream"], "-S", "1")
    mkarchive.nfpcapd(str(pcap / "export.pcap"), chans["downstream"], "-S", "1")
    return str(live), chans


def test_nfsen_profile(nfsen, tmp_path):
    """An nfsen profile's channels are read together: the day of 10.0.1.5
    through flowfetch and through a mount is exactly what nfdump prints
    for each channel alone, added up (the oracle reads each channel's
    directory by itself, not through -M), and /collector/info.json names
    the channels."""
    live, chans = nfsen
    q = QUERIES[0]      # 10.0.1.5 on the 24th: in both channels
    want = []
    for d in chans.values():
        part = expected(d, q)
        assert part, "channel %s has no flow of %s" % (d, q[0])
        want += part
    out = tmp_path / "out.csv"
    r = flowfetch(live, q, out, tmp_path / "cache")
    assert r.rc == 0, r.stderr
    same(csv_flows(out.read_text()), want, "flowfetch nfsen")
    require_fuse()
    require_flowfs()
    f = MountFactory(tmp_path / "fs")
    try:
        m = f(url="nfdump:" + live, name="nfsen", opts=["files_tz=UTC"])
        info = json.loads(m.path("collector", "info.json").read_text())
        assert sorted(info["channels"]) == sorted(chans)
        r = run(["cat", str(folder_of(m, q) / "flows.csv")], text=True)
        assert r.returncode == 0, r.stderr
        same(csv_flows(r.stdout), want, "flowfs nfsen")
    finally:
        f.finish()


@pytest.fixture(scope="module")
def intervals(data, tmp_path_factory):
    """Archives of other file intervals (nfcapd -t, here nfpcapd -t): a file
    a minute and a file an hour, of the same traffic."""
    top = tmp_path_factory.mktemp("intervals")
    pcap = str(data["tmp"] / "pcap" / "traffic.pcap")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nfdump"))
    import mkarchive
    made = {}
    for t in (60, 3600):
        made[t] = str(top / ("t%d" % t))
        mkarchive.nfpcapd(pcap, made[t], "-t", str(t))
    return made


@pytest.mark.parametrize("t", (60, 3600))
@pytest.mark.parametrize("q", [QUERIES[0], QUERIES[7], QUERIES[8]],
                         ids=["day", "hours", "midnight"])
def test_file_interval(intervals, tmp_path, t, q):
    """The files' interval is read from their names (nfcapd -t): with a file
    an hour, a range that starts inside a file (10:05) is still exact (the
    file of 10:00 holds flows received until 11:00), and so are a day and a
    range across midnight; with a file a minute as well."""
    arch = intervals[t]
    want = expected(arch, q)
    assert want, "the oracle has no flow for %s" % q[0]
    out = tmp_path / "out.csv"
    r = flowfetch(arch, q, out, tmp_path / "cache")
    assert r.rc == 0, r.stderr
    same(csv_flows(out.read_text()), want, "flowfetch -t %d %s" % (t, q[0]))


def test_file_interval_info(intervals, tmp_path):
    """/collector/info.json says the interval it read from the names."""
    require_fuse()
    require_flowfs()
    f = MountFactory(tmp_path / "fs")
    try:
        m = f(url="nfdump:" + intervals[3600], name="hourly", opts=["files_tz=UTC"])
        info = json.loads(m.path("collector", "info.json").read_text())
        assert info["interval_s"] == 3600
    finally:
        f.finish()
