#!/usr/bin/python3
"""Write tests/unit/nfdump_vectors.h: real output of nfdump 1.7.1 (Debian 12)
for test_nfdump.c.

    tests/unit/nfdump_vectors.py WORKDIR > tests/unit/nfdump_vectors.h

Makes a tiny pcap (TCP, UDP, ICMP, IPv4 and IPv6, millisecond times; Ethernet
frames built with struct), turns it into an archive with nfpcapd and, through
softflowd exporting NetFlow v9 to nfcapd on 127.0.0.1, into a second one with
an exporter, then captures `TZ=UTC nfdump -C none -q -o json -r FILE` of each.
The captured bytes are kept as they are (the times nfcapd received the
records included), so the header changes only when it is made again.
"""
import os
import signal
import struct
import subprocess
import sys
import time


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ip4(src, dst, proto, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0,
                    bytes(src), bytes(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ip6(src, dst, nh, payload):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, 64, src, dst) + payload


def tcp(sp, dp, flags, data=b""):
    return struct.pack("!HHIIBBHHH", sp, dp, 1, 0, 5 << 4, flags, 65535, 0, 0) + data


def udp(sp, dp, data):
    return struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data


def icmp(t, c):
    return struct.pack("!BBHHH", t, c, 0, 1, 1) + b"x" * 8


def write_pcap(path):
    T = 1795737600  # 2026-11-27T00:00:00Z
    a, b = [10, 0, 1, 10], [192, 0, 2, 20]
    a6 = bytes.fromhex("20010db8000000000000000000000010")
    b6 = bytes.fromhex("20010db8000000000000000000000020")
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

        def pkt(ts, l3, v6=False):
            f = b"\x02" * 6 + b"\x04" * 6 + (b"\x86\xdd" if v6 else b"\x08\x00") + l3
            sec = int(ts)
            out.write(struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)), len(f), len(f)) + f)

        pkt(T + 0.125, ip4(a, b, 6, tcp(40000, 443, 0x02)))
        pkt(T + 0.250, ip4(b, a, 6, tcp(443, 40000, 0x12)))
        pkt(T + 0.375, ip4(a, b, 6, tcp(40000, 443, 0x10, b"hello")))
        pkt(T + 1.500, ip4(a, b, 6, tcp(40000, 443, 0x11)))
        pkt(T + 2.000, ip4(a, b, 17, udp(5353, 53, b"q" * 20)))
        pkt(T + 2.010, ip4(b, a, 17, udp(53, 5353, b"r" * 40)))
        pkt(T + 3.000, ip4(a, b, 1, icmp(8, 0)))
        pkt(T + 3.001, ip4(b, a, 1, icmp(0, 0)))
        pkt(T + 4.000, ip6(a6, b6, 6, tcp(50000, 22, 0x02)), True)
        pkt(T + 4.100, ip6(b6, a6, 6, tcp(22, 50000, 0x12)), True)
        pkt(T + 5.000, ip6(a6, b6, 58, icmp(128, 0)), True)
        pkt(T + 5.500, ip4(a, b, 1, icmp(3, 3)))


def dump(path):
    env = dict(os.environ, TZ="UTC")
    return subprocess.run(["nfdump", "-C", "none", "-q", "-o", "json", "-r", path], env=env,
                          check=True, capture_output=True).stdout.decode()


def only_file(d):
    files = [os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs if f.startswith("nfcapd.2")]
    assert len(files) == 1, files
    return files[0]


def c_string(name, text):
    lines = ["static const char %s[] =" % name]
    for line in text.splitlines(keepends=True):
        lines.append('\t"%s"' % line.replace("\\", "\\\\").replace('"', '\\"')
                     .replace("\t", "\\t").replace("\n", "\\n"))
    return "\n".join(lines) + ";\n"


def main():
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    pcap = os.path.join(work, "tiny.pcap")
    write_pcap(pcap)
    pc = os.path.join(work, "pcapd")
    os.makedirs(pc, exist_ok=True)
    subprocess.run(["nfpcapd", "-r", pcap, "-w", pc], check=True, capture_output=True)
    sf = os.path.join(work, "softflowd")
    os.makedirs(sf, exist_ok=True)
    cap = subprocess.Popen(["nfcapd", "-w", sf, "-b", "127.0.0.1", "-p", "39123", "-t", "60"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        subprocess.run(["softflowd", "-r", pcap, "-n", "127.0.0.1:39123", "-v", "9", "-d"],
                       check=True, capture_output=True, timeout=30)
        time.sleep(1)
    finally:
        cap.send_signal(signal.SIGTERM)
        cap.wait()
    print("/* Made by tests/unit/nfdump_vectors.py: real output of nfdump 1.7.1. */")
    print(c_string("vec_pcapd", dump(only_file(pc))))
    print(c_string("vec_softflowd", dump(only_file(sf))))


if __name__ == "__main__":
    main()
