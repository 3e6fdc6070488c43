#!/usr/bin/python3
"""mkpcap: pcap files of known, deterministic traffic for the nfdump tests.

    mkpcap.py OUTDIR [--seed N] [--sessions N] [--burst N] [--export-end S]
    mkpcap.py OUTDIR --day-flows N [--heavy-flows N] [--seed N]

The first form (the tests' data) writes into OUTDIR:

  traffic.pcap   three UTC days of 2026-11 (the 24th to the 26th): for each
                 subject (10.0.1.5 and 2001:db8::5) SESSIONS exchanges a day
                 with many peers, spread over the day: TCP sessions (SYN,
                 SYN+ACK, ACK, data with PSH, FIN both ways), UDP request and
                 answer, ICMP / ICMPv6 echo request and reply;
                 a burst on the 25th at 12:00:00: BURST one-packet flows in
                 one second (TCP SYNs from IPv4 peers to 10.0.1.5 and UDP
                 from IPv6 peers to 2001:db8::5, two to one);
                 long flows, a packet every 30 to 60 s for 20+ minutes, so
                 that they outlive nfpcapd's 300 s active timeout and
                 nfcapd's 5-minute files (one of them crosses midnight from
                 the 24th into the 25th);
  export.pcap    the 24th's first hours only (a few hundred flows and one
                 long flow), for the export path (softflowd -> nfcapd), which
                 replays it over loopback UDP; with --export-end S (epoch
                 seconds) the same traffic moved by whole seconds so that
                 its last packet is in the second S (a test passes its
                 "now" less a few minutes: nfcapd names its files by the
                 wall clock, so replayed flows must be recent to lie near
                 their files' names, docs/nfdump.md);
  truth.json     what was written, per unidirectional 5-tuple and pcap:
                 proto, src, sport, dst, dport, first_us, last_us, packets,
                 bytes (the IP packets' total length), flags (the TCP
                 flags OR-ed, an integer: 0x1b is FIN SYN PSH ACK), kind.
                 ICMP is keyed the way nfdump shows it: sport 0, dport
                 type * 256 + code.  The collectors' records are not these
                 (nfpcapd cuts a flow at its active timeout and makes a
                 record per ICMP packet: docs/nfdump.md).

The second form (the benchmark's data, bench/nfdump.py) writes only
OUTDIR/day.pcap: one UTC day, 2026-11-20, of about N unidirectional flows
(IPv4 only), about HEAVY of them (default: a third) of the heavy host
10.0.1.20, the rest of 200 hosts 10.0.2.1 to 10.0.2.200, all with peers
in 198.18.0.0/15 (so every flow has a side in 10.0.0.0/8), at uniformly
random times: short exchanges, each two flows (a TCP session of six
packets, a UDP request and answer, an ICMP echo and its reply).  Packets
are streamed to the file in time order, so memory stays small; no truth
is written (nfdump is the oracle).  A million flows take about a minute.

The files are the same for the same seed and options, byte for byte (no
clock, no host name, Python's random.Random(seed) only).  truth.json is for
debugging: the tests' oracle is nfdump itself (oracle.py).

Packets are Ethernet II frames (pcap link type 1, microsecond timestamps),
IPv4 with a valid header checksum and IPv6, TCP, UDP and ICMP checksums
valid too, so that no tool has a reason to drop them.  Only the Python
standard library is used.
"""

import argparse
import calendar
import heapq
import ipaddress
import json
import os
import random
import struct
import sys
import time

SUBJECT4 = "10.0.1.5"
SUBJECT6 = "2001:db8::5"
DAYS = ("2026-11-24", "2026-11-25", "2026-11-26")
BURST_AT = "2026-11-25T12:00:00"

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10

ETH_SRC = bytes.fromhex("020000000001")
ETH_DST = bytes.fromhex("020000000002")


def utc_us(iso):
    """'2026-11-24' or '2026-11-24T10:02:30' (UTC) to epoch microseconds."""
    fmt = "%Y-%m-%dT%H:%M:%S" if "T" in iso else "%Y-%m-%d"
    return calendar.timegm(time.strptime(iso, fmt)) * 1000000


def addr_bytes(a):
    return ipaddress.ip_address(a).packed


def csum(data):
    """The Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def l4_segment(proto, src, dst, sport, dport, flags, payload, seq, ack,
               icmp=None):
    """The transport header and payload, checksum over the pseudo header."""
    v6 = len(src) == 16
    if proto == 6:
        hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF,
                          ack & 0xFFFFFFFF, 5 << 4, flags, 64240, 0, 0)
        seg = hdr + payload
        off = 16
    elif proto == 17:
        seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        off = 6
    else:  # ICMP (1) or ICMPv6 (58): icmp = (type, code, ident, seqno)
        t, c, ident, seqno = icmp
        seg = struct.pack("!BBHHH", t, c, 0, ident, seqno) + payload
        off = 2
    if proto == 1:
        pseudo = b""
    elif v6:
        pseudo = src + dst + struct.pack("!IxxxB", len(seg), proto)
    else:
        pseudo = src + dst + struct.pack("!xBH", proto, len(seg))
    c = csum(pseudo + seg)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return seg[:off] + struct.pack("!H", c) + seg[off + 2:]


def frame(proto, src, dst, seg, ident):
    """An Ethernet frame holding one IPv4 or IPv6 packet; returns (frame,
    IP total length)."""
    if len(src) == 16:
        ip = struct.pack("!IHBB", 6 << 28, len(seg), proto, 64) + src + dst
        etype = 0x86DD
    else:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg),
                          ident & 0xFFFF, 0x4000, 64, proto, 0, src, dst)
        ip = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
        etype = 0x0800
    pkt = ip + seg
    return ETH_DST + ETH_SRC + struct.pack("!H", etype) + pkt, len(pkt)


class Writer:
    """Collects packets (any order) and the truth per 5-tuple."""

    def __init__(self):
        self.packets = []   # (ts_us, n, frame)
        self.flows = {}     # key -> truth dict
        self.n = 0

    def add(self, ts, kind, proto, src, dst, sport=0, dport=0, flags=0,
            size=0, seq=0, ack=0, icmp=None):
        s, d = addr_bytes(src), addr_bytes(dst)
        if proto in (1, 58):
            p = 58 if ":" in src else 1
            key_sport, key_dport = 0, icmp[0] * 256 + icmp[1]
        else:
            p = proto
            key_sport, key_dport = sport, dport
        payload = bytes((self.n + i) & 0xFF for i in range(size))
        seg = l4_segment(p, s, d, sport, dport, flags, payload, seq, ack, icmp)
        fr, iplen = frame(p, s, d, seg, self.n)
        self.packets.append((ts, self.n, fr))
        self.n += 1
        key = (p, src, key_sport, dst, key_dport)
        f = self.flows.get(key)
        if f is None:
            f = self.flows[key] = {
                "proto": p, "src": src, "sport": key_sport, "dst": dst,
                "dport": key_dport, "first_us": ts, "last_us": ts,
                "packets": 0, "bytes": 0, "flags": 0, "kind": kind}
        f["first_us"] = min(f["first_us"], ts)
        f["last_us"] = max(f["last_us"], ts)
        f["packets"] += 1
        f["bytes"] += iplen
        f["flags"] |= flags if p == 6 else 0

    def shift_to_end(self, end_s):
        """Moves every packet and flow by whole seconds so that the last
        packet falls in the second END_S (epoch seconds)."""
        last = max(ts for ts, _, _ in self.packets)
        delta = (end_s - last // 1000000) * 1000000
        self.packets = [(ts + delta, n, fr) for ts, n, fr in self.packets]
        for f in self.flows.values():
            f["first_us"] += delta
            f["last_us"] += delta

    def write(self, path):
        """Writes the pcap (sorted by time, ties in order of creation);
        returns the number of packets."""
        self.packets.sort(key=lambda x: (x[0], x[1]))
        with open(path, "wb") as out:
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0,
                                  65535, 1))
            for ts, _, fr in self.packets:
                out.write(struct.pack("<IIII", ts // 1000000, ts % 1000000,
                                      len(fr), len(fr)))
                out.write(fr)
        return len(self.packets)


class Peers:
    """Peers and their source ports: every 5-tuple is used once."""

    def __init__(self, rng):
        self.rng = rng
        self.port = {}

    def v4(self):
        net = self.rng.choice(("198.51.100", "203.0.113", "192.0.2"))
        return "%s.%d" % (net, self.rng.randint(1, 254))

    def v6(self):
        return "2001:db8:100::%x" % self.rng.randint(1, 0xFFF)

    def ephemeral(self, host):
        p = self.port.get(host, 32768 + self.rng.randint(0, 999))
        self.port[host] = p + 1 + self.rng.randint(0, 7)
        if self.port[host] > 60999:
            self.port[host] = 32768
        return p


def tcp_session(w, rng, t, cli, srv, cport, sport, kind="tcp"):
    """SYN, SYN+ACK, ACK, 1-4 data exchanges with PSH, FIN both ways, all
    within a few seconds; returns the time of its last packet."""
    a, b = rng.randint(1, 1 << 30), rng.randint(1, 1 << 30)

    def step(lo=1000, hi=300000):
        return rng.randint(lo, hi)
    w.add(t, kind, 6, cli, srv, cport, sport, TCP_SYN, seq=a)
    t += step()
    w.add(t, kind, 6, srv, cli, sport, cport, TCP_SYN | TCP_ACK, seq=b,
          ack=a + 1)
    t += step()
    w.add(t, kind, 6, cli, srv, cport, sport, TCP_ACK, seq=a + 1, ack=b + 1)
    for _ in range(rng.randint(1, 4)):
        t += step()
        n = rng.randint(20, 400)
        w.add(t, kind, 6, cli, srv, cport, sport, TCP_PSH | TCP_ACK, n)
        t += step()
        n = rng.randint(100, 1200)
        w.add(t, kind, 6, srv, cli, sport, cport, TCP_PSH | TCP_ACK, n)
    t += step()
    w.add(t, kind, 6, cli, srv, cport, sport, TCP_FIN | TCP_ACK)
    t += step()
    w.add(t, kind, 6, srv, cli, sport, cport, TCP_FIN | TCP_ACK)
    t += step()
    w.add(t, kind, 6, cli, srv, cport, sport, TCP_ACK)
    return t


def udp_exchange(w, rng, t, cli, srv, cport, sport):
    w.add(t, "udp", 17, cli, srv, cport, sport, size=rng.randint(20, 80))
    t += rng.randint(500, 50000)
    w.add(t, "udp", 17, srv, cli, sport, cport, size=rng.randint(40, 500))


def icmp_echo(w, rng, t, cli, srv, ident):
    v6 = ":" in cli
    req, rep = (128, 129) if v6 else (8, 0)
    for seq in range(rng.randint(1, 3)):
        w.add(t, "icmp", 1, cli, srv, icmp=(req, 0, ident, seq), size=56)
        w.add(t + rng.randint(200, 20000), "icmp", 1, srv, cli,
              icmp=(rep, 0, ident, seq), size=56)
        t += 1000000


def day_traffic(w, rng, peers, day, subject, sessions, hours=24):
    """SESSIONS exchanges of SUBJECT on DAY, at random times in its first
    HOURS hours (each ends within seconds, before the day's end)."""
    v6 = ":" in subject
    t0 = utc_us(day)
    span = hours * 3600 * 1000000 - 60 * 1000000
    times = sorted(rng.randrange(0, span) for _ in range(sessions))
    for i, off in enumerate(times):
        t = t0 + off
        peer = peers.v6() if v6 else peers.v4()
        kind = rng.choice(("tcp", "tcp", "tcp", "udp", "icmp"))
        outbound = rng.random() < 0.6
        cli, srv = (subject, peer) if outbound else (peer, subject)
        if kind == "tcp":
            port = rng.choice((22, 25, 80, 443, 445, 3389, 8080))
            tcp_session(w, rng, t, cli, srv, peers.ephemeral(cli), port)
        elif kind == "udp":
            port = rng.choice((53, 123, 161, 514))
            udp_exchange(w, rng, t, cli, srv, peers.ephemeral(cli), port)
        else:
            icmp_echo(w, rng, t, cli, srv, ident=(i * 7 + 1) & 0xFFFF)


def long_flow(w, rng, t, end, cli, srv, proto, cport, sport):
    """A packet each way every 30 to 60 s from T to past END (microseconds):
    one flow a direction that outlives any 300 s active timeout."""
    kind = "long"
    if proto == 6:
        w.add(t, kind, 6, cli, srv, cport, sport, TCP_SYN)
        w.add(t + 1000, kind, 6, srv, cli, sport, cport, TCP_SYN | TCP_ACK)
        t += 2000
    while t < end:
        t += rng.randint(30, 60) * 1000000
        fl = TCP_PSH | TCP_ACK if proto == 6 else 0
        w.add(t, kind, proto, cli, srv, cport, sport, fl, rng.randint(40, 200))
        w.add(t + 5000, kind, proto, srv, cli, sport, cport, fl,
              rng.randint(40, 200))
    if proto == 6:
        w.add(t + 10000, kind, 6, cli, srv, cport, sport, TCP_FIN | TCP_ACK)
        w.add(t + 11000, kind, 6, srv, cli, sport, cport, TCP_FIN | TCP_ACK)


def burst(w, rng, t0, n):
    """N one-packet flows within one second from T0 (two IPv4 TCP SYNs to
    10.0.1.5 for each IPv6 UDP packet to 2001:db8::5), each from its own
    peer address."""
    for i in range(n):
        t = t0 + i * 1000000 // n
        if i % 3 < 2:
            src = "10.9.%d.%d" % (i // 250, i % 250 + 1)
            w.add(t, "burst", 6, src, SUBJECT4, 40000 + i % 20000, 445,
                  TCP_SYN)
        else:
            src = "2001:db8:9::%x" % (i + 1)
            w.add(t, "burst", 17, src, SUBJECT6, 50000 + i % 10000, 53,
                  size=32)


def build(outdir, seed, sessions, nburst, export_end_s=None):
    """Writes traffic.pcap, export.pcap and truth.json into OUTDIR; returns
    the truth.  EXPORT_END_S (epoch seconds, None: unmoved) moves
    export.pcap's traffic so that it ends in that second."""
    rng = random.Random(seed)
    peers = Peers(rng)
    traffic = Writer()
    for day in DAYS:
        day_traffic(traffic, rng, peers, day, SUBJECT4, sessions)
        day_traffic(traffic, rng, peers, day, SUBJECT6, sessions)
    burst(traffic, rng, utc_us(BURST_AT), nburst)
    long_flow(traffic, rng, utc_us("2026-11-24T10:02:30"),
              utc_us("2026-11-24T10:27:30"), SUBJECT4, "198.51.100.7", 6,
              40022, 22)
    long_flow(traffic, rng, utc_us("2026-11-24T23:50:10"),
              utc_us("2026-11-25T00:15:00"), SUBJECT6, "2001:db8:100::9", 17,
              40123, 123)
    long_flow(traffic, rng, utc_us("2026-11-26T08:58:00"),
              utc_us("2026-11-26T09:20:00"), "203.0.113.80", SUBJECT4, 6,
              51515, 443)

    export = Writer()
    rng2 = random.Random(seed + 1)
    peers2 = Peers(rng2)
    for subject in (SUBJECT4, SUBJECT6):
        day_traffic(export, rng2, peers2, DAYS[0], subject, sessions // 2,
                    hours=2)
    long_flow(export, rng2, utc_us("2026-11-24T00:31:00"),
              utc_us("2026-11-24T00:53:00"), SUBJECT4, "198.51.100.7", 6,
              40022, 22)
    if export_end_s is not None:
        export.shift_to_end(export_end_s)

    os.makedirs(outdir, exist_ok=True)
    truth = {}
    for name, wr in (("traffic.pcap", traffic), ("export.pcap", export)):
        wr.write(os.path.join(outdir, name))
        truth[name] = sorted(wr.flows.values(), key=lambda f: (
            f["first_us"], f["proto"], f["src"], f["sport"], f["dst"],
            f["dport"]))
    with open(os.path.join(outdir, "truth.json"), "w") as out:
        meta = {"seed": seed, "sessions": sessions, "burst": nburst,
                "subjects": [SUBJECT4, SUBJECT6], "days": list(DAYS),
                "flows": truth}
        if export_end_s is not None:
            meta["export_end_s"] = export_end_s
        json.dump(meta, out, indent=1, sort_keys=True)
        out.write("\n")
    return truth


BENCH_DAY = "2026-11-20"
BENCH_HEAVY = "10.0.1.20"
BENCH_HOSTS = 200           # 10.0.2.1 to 10.0.2.200
PAD = bytes(range(256)) * 8


class DayWriter:
    """Streams packets to a pcap in time order: an exchange's packets wait
    in a heap until no later exchange can put a packet before them."""

    def __init__(self, path):
        self.out = open(path, "wb")
        self.out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0,
                                   65535, 1))
        self.heap = []
        self.n = 0

    def add(self, ts, proto, src, dst, sport=0, dport=0, flags=0, size=0,
            icmp=None):
        s, d = addr_bytes(src), addr_bytes(dst)
        seg = l4_segment(proto, s, d, sport, dport, flags,
                         PAD[self.n & 0xFF:(self.n & 0xFF) + size],
                         self.n * 1000, 0, icmp)
        fr, _ = frame(proto, s, d, seg, self.n)
        heapq.heappush(self.heap, (ts, self.n, fr))
        self.n += 1

    def flush(self, before=None):
        """Writes the packets earlier than BEFORE (all when None)."""
        h = self.heap
        while h and (before is None or h[0][0] < before):
            ts, _, fr = heapq.heappop(h)
            self.out.write(struct.pack("<IIII", ts // 1000000, ts % 1000000,
                                       len(fr), len(fr)))
            self.out.write(fr)

    def close(self):
        self.flush()
        self.out.close()


def day_exchange(w, rng, t, host, port_of):
    """One short exchange of HOST with a peer in 198.18.0.0/15 at T (us),
    over within a second: two unidirectional flows."""
    peer = "198.%d.%d.%d" % (18 + rng.getrandbits(1), rng.getrandbits(8),
                             rng.randint(1, 254))
    outbound = rng.random() < 0.6
    cli, srv = (host, peer) if outbound else (peer, host)
    cport = port_of(cli)
    kind = rng.random()
    if kind < 0.5:
        sport = rng.choice((22, 25, 80, 443, 445, 3389, 8080))
        steps = [rng.randint(500, 80000) for _ in range(5)]
        w.add(t, 6, cli, srv, cport, sport, TCP_SYN)
        t += steps[0]
        w.add(t, 6, srv, cli, sport, cport, TCP_SYN | TCP_ACK)
        t += steps[1]
        w.add(t, 6, cli, srv, cport, sport, TCP_PSH | TCP_ACK,
              rng.randint(20, 300))
        t += steps[2]
        w.add(t, 6, srv, cli, sport, cport, TCP_PSH | TCP_ACK,
              rng.randint(40, 600))
        t += steps[3]
        w.add(t, 6, cli, srv, cport, sport, TCP_FIN | TCP_ACK)
        t += steps[4]
        w.add(t, 6, srv, cli, sport, cport, TCP_FIN | TCP_ACK)
    elif kind < 0.85:
        sport = rng.choice((53, 123, 161, 514))
        w.add(t, 17, cli, srv, cport, sport, size=rng.randint(20, 80))
        w.add(t + rng.randint(500, 50000), 17, srv, cli, sport, cport,
              size=rng.randint(40, 300))
    else:
        ident, seq = cport, rng.getrandbits(8)
        w.add(t, 1, cli, srv, icmp=(8, 0, ident, seq), size=56)
        w.add(t + rng.randint(200, 20000), 1, srv, cli,
              icmp=(0, 0, ident, seq), size=56)


def build_day(outdir, seed, flows, heavy=None):
    """OUTDIR/day.pcap: about FLOWS flows on BENCH_DAY, about HEAVY of them
    (default FLOWS // 3) of BENCH_HEAVY; returns (path, packets)."""
    heavy = flows // 3 if heavy is None else min(heavy, flows)
    rng = random.Random(seed)
    hosts = ["10.0.2.%d" % (i + 1) for i in range(BENCH_HOSTS)]
    port = {}

    def port_of(h):
        p = port.get(h)
        if p is None:
            p = 32768 + rng.randint(0, 27000)
        port[h] = 32768 if p >= 60999 else p + 1
        return p
    n_heavy, n_other = heavy // 2, (flows - heavy) // 2
    span = 86400 * 1000000 - 60 * 1000000
    t0 = utc_us(BENCH_DAY)
    times = sorted(rng.randrange(span) for _ in range(n_heavy + n_other))
    who = [True] * n_heavy + [False] * n_other
    rng.shuffle(who)
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "day.pcap")
    w = DayWriter(path)
    try:
        for i, off in enumerate(times):
            t = t0 + off
            w.flush(before=t)
            host = BENCH_HEAVY if who[i] else hosts[rng.randrange(len(hosts))]
            day_exchange(w, rng, t, host, port_of)
    finally:
        w.close()
    return path, w.n


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sessions", type=int, default=120,
                    help="exchanges per subject and day (default 120)")
    ap.add_argument("--burst", type=int, default=3000,
                    help="one-packet flows in the burst (default 3000)")
    ap.add_argument("--export-end", type=int, default=None, metavar="S",
                    help="export.pcap's last packet in this second (epoch "
                    "seconds; default: the 24th's traffic unmoved)")
    ap.add_argument("--day-flows", type=int, default=0,
                    help="write only day.pcap, about N flows on %s "
                    "(the benchmark's data)" % BENCH_DAY)
    ap.add_argument("--heavy-flows", type=int, default=None,
                    help="with --day-flows: %s's share (default a third)"
                    % BENCH_HEAVY)
    a = ap.parse_args(argv)
    if a.day_flows:
        path, packets = build_day(a.outdir, a.seed, a.day_flows,
                                  a.heavy_flows)
        print("%s: %d packets" % (path, packets))
        return 0
    truth = build(a.outdir, a.seed, a.sessions, a.burst, a.export_end)
    for name, flows in truth.items():
        print("%s: %d flows" % (name, len(flows)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
