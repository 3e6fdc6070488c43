"""The nfdump test data itself (issue 14, 'Real data in the tests').

mkpcap.py writes pcaps of known traffic, mkarchive.py turns them into
archives with the real collector tools (nfpcapd; softflowd exporting
NetFlow v9 and IPFIX to nfcapd over loopback), and oracle.py asks nfdump
for a query's flows.  These tests check that the archives hold what the
driver's tests will need, with nfdump as the judge: the subjects' flows on
each day, IPv6, the burst, flows whose record lies in a later file than the
one their first-seen falls in, and the export path agreeing with nfpcapd.
They also keep the evidence for docs/nfdump.md's claims that the driver
depends on (-t, "No matching flows").

The archives are built once for the module, in a temporary directory, in
about a second.  Without the nfdump binaries (apt-get install nfdump
softflowd) the module is skipped, saying so; CI installs them (./dev).
"""

import calendar
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nfdump"))

import archives  # noqa: E402
import mkpcap  # noqa: E402
import oracle  # noqa: E402
from archives import DAY_MS, SUBJECTS, ms  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return archives.build(tmp_path_factory.mktemp("nfdump"))


def truth_flows(data, pcap, subject=None):
    fl = data["truth"][pcap]
    if subject is None:
        return fl
    return [f for f in fl if subject in (f["src"], f["dst"])]


def totals(flows):
    """packets, bytes and OR-ed TCP flags per 5-tuple, over records."""
    out = defaultdict(lambda: [0, 0, set()])
    for f in flows:
        t = out[oracle.five_tuple(f)]
        t[0] += f["packets"]
        t[1] += f["bytes"]
        if isinstance(f["flags"], str):
            t[2].update(c for c in f["flags"] if c != ".")
    return dict(out)


FLAG_LETTERS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"),
                (0x10, "A"), (0x20, "U"))


def letters(bits):
    return {c for b, c in FLAG_LETTERS if bits & b}


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("layout", ["pcapd-flat", "pcapd-day"])
def test_subject_flows_each_day(data, subject, layout):
    """On each of the three days the oracle finds the subject's flows:
    every 5-tuple that the pcap started that day, and only 5-tuples that
    were alive that day; summed over the archive, each 5-tuple has the
    packets, IP bytes and TCP flags the pcap holds.  The flat and the
    year/month/day layouts give the same answers."""
    truth = truth_flows(data, "traffic.pcap", subject)
    archive = data["arch"][layout]
    seen = []
    for day in mkpcap.DAYS:
        s = ms(day)
        got = oracle.flows(archive, subject, s, s + DAY_MS)
        assert got, "no flows of %s on %s in %s" % (subject, day, layout)
        tuples = {oracle.five_tuple(f) for f in got}
        started = {oracle.five_tuple(f) for f in truth
                   if s <= f["first_us"] // 1000 < s + DAY_MS}
        alive = {oracle.five_tuple(f) for f in truth
                 if f["first_us"] // 1000 < s + DAY_MS
                 and f["last_us"] // 1000 >= s}
        assert started <= tuples <= alive, (day, started ^ tuples)
        assert all(subject in (f["src"], f["dst"]) for f in got)
        assert all(s <= f["first_ms"] < s + DAY_MS for f in got)
        seen += got
    want = {oracle.five_tuple(f): (f["packets"], f["bytes"], f["flags"])
            for f in truth}
    got = totals(seen)
    assert set(got) == set(want)
    for k, (p, b, fl) in want.items():
        assert got[k][:2] == [p, b], k
        assert got[k][2] == letters(fl), k


def test_layouts_hold_the_same_records(data):
    """-S 1 changes where the files are, not what they hold."""
    flat = oracle.nfdump_json(["-R", data["arch"]["pcapd-flat"]])
    day = oracle.nfdump_json(["-R", data["arch"]["pcapd-day"]])
    def key(records):
        return sorted(repr(sorted(oracle.record(r).items()))
                      for r in records)
    assert len(flat) > 4000
    assert key(flat) == key(day)
    tree = sorted(p.relative_to(data["arch"]["pcapd-day"]).parts[:3]
                  for p in Path(data["arch"]["pcapd-day"]).rglob("nfcapd.2*"))
    assert set(tree) == {("2026", "11", d[-2:]) for d in mkpcap.DAYS}


def test_ipv6_flows_present(data):
    """IPv6 TCP, UDP and ICMPv6 flows of 2001:db8::5, every day."""
    for day in mkpcap.DAYS:
        s = ms(day)
        got = oracle.flows(data["arch"]["pcapd-flat"], mkpcap.SUBJECT6, s,
                           s + DAY_MS)
        protos = {f["proto"] for f in got}
        assert {6, 17, 58} <= protos, (day, protos)
        assert all(":" in f["src"] and ":" in f["dst"] for f in got)
        echo = [f for f in got if f["proto"] == 58]
        assert {(f["icmp_type"], f["icmp_code"]) for f in echo} == \
            {(128, 0), (129, 0)}


def test_burst(data):
    """The burst: 3000 one-packet flows in the second from 12:00:00 on the
    25th, 2000 to 10.0.1.5 from 10.9.0.0/16 and 1000 to 2001:db8::5."""
    s = ms(mkpcap.BURST_AT)
    a = data["arch"]["pcapd-flat"]
    v4 = oracle.flows(a, mkpcap.SUBJECT4, s, s + 1000, peer="10.9.0.0/16")
    v6 = oracle.flows(a, mkpcap.SUBJECT6, s, s + 1000,
                      peer="2001:db8:9::/64")
    assert len(v4) == 2000 and len(v6) == 1000
    assert all(f["packets"] == 1 and f["dst"] == mkpcap.SUBJECT4
               and f["dport"] == 445 and f["flags"] == "......S."
               for f in v4)
    assert len({oracle.five_tuple(f) for f in v4 + v6}) == 3000


# where mkpcap's long flows are (with a file's slack at each end)
LONG_FLOWS = (("2026-11-24T10:00:00", "2026-11-24T10:40:00"),
              ("2026-11-24T23:45:00", "2026-11-25T00:25:00"),
              ("2026-11-26T08:55:00", "2026-11-26T09:30:00"))


def slot_ms(name):
    """nfcapd.YYYYmmddHHMM (UTC here: the tools ran with TZ=UTC) to ms."""
    stamp = name.split(".")[1]
    return calendar.timegm(time.strptime(stamp, "%Y%m%d%H%M")) * 1000


@pytest.mark.parametrize("layout", ["pcapd-flat", "pcapd-day"])
def test_flows_cross_file_boundaries(data, layout):
    """Some records lie in a later file than the one their first-seen falls
    in: long flows, written when nfpcapd's 300 s active timeout expired
    them.  Reading only the files named for a window would lose them; the
    oracle, reading the archive and selecting by first-seen, has them.
    One of them started on the 24th and is in a file of the 25th."""
    root = Path(data["arch"][layout])
    late = []
    for path in sorted(root.rglob("nfcapd.2*")):
        start = slot_ms(path.name)
        if not any(ms(a) <= start < ms(b) for a, b in LONG_FLOWS):
            continue    # one nfdump a file: only where the long flows are
        for r in oracle.nfdump_json(["-r", str(path)]):
            f = oracle.record(r)
            if f["first_ms"] < start:
                late.append((path, f))
    assert len(late) >= 10
    pairs = {frozenset((f["src"], f["dst"])) for _, f in late}
    for a, b in ((mkpcap.SUBJECT4, "198.51.100.7"),
                 (mkpcap.SUBJECT6, "2001:db8:100::9"),
                 ("203.0.113.80", mkpcap.SUBJECT4)):
        assert frozenset((a, b)) in pairs, (a, b)
    over_midnight = [(p, f) for p, f in late
                     if f["first_ms"] < ms("2026-11-25")
                     <= slot_ms(p.name)]
    assert over_midnight, "no record of the 24th in a file of the 25th"
    p, f = over_midnight[0]
    if layout == "pcapd-day":
        assert p.parent.relative_to(root).parts == ("2026", "11", "25")
    # the oracle's day holds it: it started on the 24th
    subject = mkpcap.SUBJECT6 if ":" in f["src"] else mkpcap.SUBJECT4
    day = oracle.flows(str(root), subject, ms("2026-11-24"),
                       ms("2026-11-25"))
    assert f in day


def test_t_keeps_only_flows_entirely_inside(data):
    """nfdump 1.7.1's -t drops a flow that started in its window and ended
    after it (the reason the driver and the oracle select by first-seen
    themselves; docs/nfdump.md)."""
    a = data["arch"]["pcapd-flat"]
    s, e = ms("2026-11-24T10:05:00"), ms("2026-11-24T10:15:00")
    ours = oracle.flows(a, mkpcap.SUBJECT4, s, e, peer="198.51.100.7")
    with_t = [oracle.record(r) for r in oracle.nfdump_json(
        ["-R", a, "-t", "2026/11/24.10:05:00-2026/11/24.10:15:00",
         oracle.selection(mkpcap.SUBJECT4, "198.51.100.7")])]
    assert with_t and all(s <= f["first_ms"] and f["last_ms"] <= e
                          for f in with_t)
    lost = [f for f in ours if f not in with_t]
    assert lost and all(f["last_ms"] > e for f in lost)
    assert all(f in ours for f in with_t)


def test_no_matching_flows(data):
    """An address with no flows: nfdump exits 0 and says 'No matching
    flows' inside its JSON brackets; the oracle gives an empty list."""
    a = data["arch"]["pcapd-flat"]
    p = subprocess.run(["nfdump", "-R", a, "-o", "json", "host 10.0.1.99"],
                       capture_output=True, text=True,
                       env=dict(os.environ, TZ="UTC"), timeout=60)
    assert p.returncode == 0 and "No matching flows" in p.stdout
    assert oracle.flows(a, "10.0.1.99", 0, 2 ** 62) == []
    with pytest.raises(oracle.OracleError):
        oracle.nfdump_json(["-R", a + "/missing"])


@pytest.mark.parametrize("export", ["v9", "ipfix"])
def test_export_path_agrees_with_nfpcapd(data, export):
    """softflowd -> nfcapd (NetFlow v9, IPFIX) and nfpcapd, from the same
    pcap: the same 5-tuples, the same packets and bytes per 5-tuple; softflowd
    keeps one record per 5-tuple (it expires flows only at the end of the
    file), with the first and last packet times of the conversation (both
    directions) to the millisecond.  nfpcapd cuts flows at its active
    timeout and makes a record per ICMP packet, so its records are more.
    nfcapd names its files by the wall clock, not by the flows' times.
    NetFlow v9 loses ICMPv6's type and code."""
    truth = truth_flows(data, "export.pcap")
    exp = [oracle.record(r)
           for r in oracle.nfdump_json(["-R", data["arch"][export]])]
    pcapd = [oracle.record(r)
             for r in oracle.nfdump_json(["-R", data["arch"]["pcapd-export"]])]
    if export == "v9":
        # softflowd 1.1.0's v9 ICMPv6 records reach nfdump 1.7.1 with type
        # and code 0 (IPFIX's and IPv4's keep theirs): compare without them
        v6icmp = [f for f in exp if f["proto"] == 58]
        assert v6icmp and all(f["dport"] == 0 for f in v6icmp)
        truth = [dict(f, dport=0) if f["proto"] == 58 else f for f in truth]
        pcapd = [dict(f, dport=0) if f["proto"] == 58 else f for f in pcapd]
    want = {oracle.five_tuple(f): f for f in truth}
    assert len(exp) == len(want)
    assert {oracle.five_tuple(f) for f in exp} == set(want)
    assert set(totals(pcapd)) == set(want)
    assert len(pcapd) > len(exp)
    got = totals(exp)
    for k, f in want.items():
        assert got[k][:2] == [f["packets"], f["bytes"]], k
    # softflowd tracks a conversation as one flow with both directions and
    # gives both records the conversation's first and last packet times;
    # how it pairs ICMP types is its own (an echo reply may share the times
    # of a later request): for ICMP, both times are some packet's time of
    # the same two addresses, and the record's own packets lie within them
    for f in exp:
        p, s, sp, d, dp = oracle.five_tuple(f)
        own = want[(p, s, sp, d, dp)]
        if p in (6, 17):
            t = [own] + [want[k] for k in [(p, d, dp, s, sp)] if k in want]
            assert (f["first_ms"], f["last_ms"]) == (
                min(g["first_us"] for g in t) // 1000,
                max(g["last_us"] for g in t) // 1000), f
            continue
        pair = [g for g in truth if g["proto"] == p
                and {g["src"], g["dst"]} == {s, d}]
        assert f["first_ms"] in {g["first_us"] // 1000 for g in pair}, f
        assert f["last_ms"] in {g["last_us"] // 1000 for g in pair}, f
        assert f["first_ms"] <= own["first_us"] // 1000, f
        assert own["last_us"] // 1000 <= f["last_ms"], f
    for k, v in totals(pcapd).items():
        assert v[:2] == got[k][:2], k
    # the file is named for the 5-minute slot of the wall clock when the
    # archive was made (nfcapd.YYYYmmddHHMM, UTC here), not for 2026-11-24
    names = [p.name for p in Path(data["arch"][export]).iterdir()]
    assert names
    for n in names:
        assert data["made_ms"][0] - 300000 < slot_ms(n) <= data["made_ms"][1]
