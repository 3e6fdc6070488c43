#!/usr/bin/python3
"""mkarchive: nfdump archives made by the real collector tools from our pcaps.

    mkarchive.py PCAPDIR OUTDIR [NAME...]

PCAPDIR holds mkpcap.py's traffic.pcap and export.pcap.  Each NAME (all of
them by default) is an archive directory made under OUTDIR:

  pcapd-flat     nfpcapd -r traffic.pcap -w DIR: the flat layout, 5-minute
                 files nfcapd.YYYYmmddHHMM named by the packets' time
  pcapd-day      the same with -S 1: DIR/YYYY/MM/DD/nfcapd.YYYYmmddHHMM
  pcapd-export   nfpcapd -r export.pcap -w DIR, to compare with the two below
  v9             softflowd -r export.pcap -v 9 -n 127.0.0.1:PORT into
                 nfcapd -w DIR -b 127.0.0.1 -p PORT (NetFlow v9 over UDP)
  ipfix          the same with -v 10 (IPFIX)

What the tools do with our files, and why these options, is in
docs/nfdump.md.  Every process is started here and waited for by its pid;
nfcapd binds 127.0.0.1 only, on a port the kernel picked free a moment
before (a second try on another port if it is taken meanwhile), and is
stopped with SIGTERM, which makes it close (flush) its current file.
Every child runs with TZ=UTC, so file names are in UTC.  A tool's failure
raises ToolError naming the command, its exit status and its stderr.
"""

import os
import signal
import socket
import subprocess
import sys
import time

NAMES = ("pcapd-flat", "pcapd-day", "pcapd-export", "v9", "ipfix")
TOOLS = ("nfdump", "nfcapd", "nfpcapd", "softflowd")
DEADLINE_S = 20.0


class ToolError(RuntimeError):
    pass


def missing_tools():
    """The collector tools not found on PATH (or /usr/sbin for softflowd)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    out = []
    for t in TOOLS:
        if not any(os.access(os.path.join(d, t), os.X_OK)
                   for d in path.split(":") if d):
            out.append(t)
    return out


def tool_env():
    env = dict(os.environ)
    env["TZ"] = "UTC"
    env["PATH"] = env.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    return env


def run(cmd, timeout=DEADLINE_S):
    """Runs CMD to its end; returns its stdout; raises ToolError when it
    fails or outlives TIMEOUT (it is then killed)."""
    try:
        p = subprocess.run(cmd, env=tool_env(), capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise ToolError("%s: still running after %.0f s (killed)"
                        % (" ".join(cmd), timeout)) from e
    if p.returncode != 0:
        raise ToolError("%s: exit status %d: %s"
                        % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


def nfpcapd(pcap, outdir, *opts, timeout=DEADLINE_S):
    os.makedirs(outdir, exist_ok=True)
    run(["nfpcapd", "-r", pcap, "-w", outdir] + list(opts), timeout=timeout)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_rx_queue(port):
    """Bytes waiting in the receive queue of the UDP socket bound to
    127.0.0.1:PORT (/proc/net/udp), or None when there is no such socket."""
    want = "0100007F:%04X" % port
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want:
                return int(fields[4].split(":")[1], 16)
    return None


def wait_for(pred, what, proc=None, log=None):
    deadline = time.monotonic() + DEADLINE_S
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise ToolError("%s: exited with %d before %s: %s" % (
                " ".join(proc.args), proc.returncode, what,
                open(log).read().strip() if log else ""))
        if time.monotonic() > deadline:
            raise ToolError("no %s within %.0f s" % (what, DEADLINE_S))
        time.sleep(0.02)


STOP_S = 90.0    # nfcapd's exit after SIGTERM: it took over 20 s in a CI
                # run on a machine loaded to 8 (it flushes and closes its file)


def stop(proc):
    """SIGTERM to PROC (ours, by pid), waited for; SIGKILL after STOP_S."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def export(pcap, outdir, version):
    """softflowd -r PCAP -v VERSION exporting to an nfcapd writing OUTDIR;
    returns softflowd's statistics (its stdout).

    softflowd 1.1.0 with -r blocks in accept() on its control socket before
    reading the file unless the socket is disabled with -c none, and
    without -A milli (absolute times) its v9 times are shifted and its IPFIX
    records end before they start (see docs/nfdump.md); it expires every
    flow at the end of the file and exits.  nfcapd is stopped once
    softflowd has exited and nfcapd's socket holds nothing unread, so every
    datagram sent is in the file it closes.
    """
    os.makedirs(outdir, exist_ok=True)
    log = outdir + ".nfcapd.log"
    for attempt in range(3):
        port = free_udp_port()
        with open(log, "w") as lf:
            cap = subprocess.Popen(
                ["nfcapd", "-w", outdir, "-b", "127.0.0.1", "-p", str(port),
                 "-I", "softflowd-v%d" % version],
                env=tool_env(), stdout=lf, stderr=subprocess.STDOUT)
        try:
            try:
                wait_for(lambda: udp_rx_queue(port) is not None,
                         "nfcapd listening on 127.0.0.1:%d" % port, cap, log)
            except ToolError:
                if cap.poll() is not None and attempt < 2:
                    continue        # the port was taken meanwhile
                raise
            out = run(["softflowd", "-r", pcap, "-n", "127.0.0.1:%d" % port,
                       "-v", str(version), "-A", "milli", "-d",
                       "-c", "none", "-p", outdir + ".softflowd.pid"])
            wait_for(lambda: udp_rx_queue(port) == 0,
                     "empty receive queue of nfcapd", cap, log)
        finally:
            stop(cap)
        if cap.returncode != 0:
            raise ToolError("nfcapd exited with %d: %s"
                            % (cap.returncode, open(log).read().strip()))
        return out
    raise ToolError("no free port for nfcapd")


def build(pcapdir, outdir, names=NAMES):
    """Makes the archives NAMES under OUTDIR; returns {name: directory}."""
    traffic = os.path.join(pcapdir, "traffic.pcap")
    small = os.path.join(pcapdir, "export.pcap")
    made = {}
    for name in names:
        d = os.path.join(outdir, name)
        if name == "pcapd-flat":
            nfpcapd(traffic, d)
        elif name == "pcapd-day":
            nfpcapd(traffic, d, "-S", "1")
        elif name == "pcapd-export":
            nfpcapd(small, d)
        elif name in ("v9", "ipfix"):
            export(small, d, 9 if name == "v9" else 10)
        else:
            raise ValueError("unknown archive %r" % name)
        made[name] = d
    return made


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    gone = missing_tools()
    if gone:
        sys.stderr.write("mkarchive: missing %s (apt-get install nfdump "
                         "softflowd)\n" % ", ".join(gone))
        return 1
    for name, d in build(argv[0], argv[1], argv[2:] or NAMES).items():
        print("%s: %s" % (name, d))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
