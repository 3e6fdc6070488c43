"""flowfs installed and mounted as an administrator does it (issue 15):
``meson install --destdir`` into a scratch root, then mount(8) with the
installed flowfs over a real flowsim on loopback, from the installed
example fstab line (``mount -T SCRATCH_FSTAB MNT``, never /etc/fstab) and
with ``mount -t fuse.flowfs URL MNT -o OPTIONS`` as systemd runs the
example flows.mount.

mount(8) runs /sbin/mount.fuse (fuse3's mount.fuse3) for the type
fuse.flowfs, which runs ``flowfs SOURCE MNT -o rw,...,dev,suid`` through
/bin/sh with the environment's PATH removed by mount: the shell's default
PATH finds it (/usr/local/sbin first).  So each mount runs in a private
mount namespace (unshare -m) where the scratch root's bindir is bound over
/usr/local/sbin: the machine's directories and mounts are untouched, and
what the installed flowfs does is what is seen.  The namespace's script
unmounts in a trap; a flowfs of ours still running after it is killed by
its pid and fails the test.

Needs root (mount(8) of a FUSE type from an fstab without 'user'),
unshare, /dev/fuse; else skipped.  The build: $FLOWFS_BUILD_ROOT (meson
sets it), else the directory above $FLOWFS's fs/.
"""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import sim_args, url_of
from mount import flowfs_binary, mounted_at, require_fuse

# The day read through each mount: yesterday of the frozen clock, from
# web-1 (5,000 flows a day).
IP = "10.0.1.10"
DAY = "2026-11-28"
DAY_MS = 1795824000000                  # 2026-11-28T00:00:00Z
DAY_LEN_MS = 24 * 3600 * 1000

STEP_TIMEOUT_S = 120                    # each step in the namespace
DAEMON_EXIT_S = 10.0

# Run in the private namespace: $1 the bindir bound over /usr/local/sbin,
# $2 the mount point, $3 the folder to list, $4 the file to read, $5 the
# directory for what was seen; the rest is the mount command.
NS_SCRIPT = r'''
set -u
bin=$1 mnt=$2 dir=$3 file=$4 out=$5
shift 5
mount --bind "$bin" /usr/local/sbin || exit 90
cleanup() {
	if grep -qs " $mnt fuse" /proc/self/mounts; then
		umount "$mnt" || umount -l "$mnt"
	fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT
timeout %(t)d "$@" || exit 91
grep " $mnt " /proc/self/mounts > "$out/mounts"
timeout %(t)d ls "$mnt/$dir" > "$out/ls" || exit 92
timeout %(t)d cat "$mnt/$file" > "$out/file" || exit 93
''' % {"t": STEP_TIMEOUT_S}


@pytest.fixture(scope="module", autouse=True)
def _prerequisites():
    require_fuse()
    if os.geteuid() != 0:
        pytest.skip("mount(8) of fuse.flowfs from a scratch fstab needs root")
    missing = [t for t in ("unshare", "mount", "umount", "meson")
               if not shutil.which(t)]
    if missing:
        pytest.skip(f"not on PATH: {' '.join(missing)}")
    if not os.path.isdir("/usr/local/sbin"):
        pytest.skip("no /usr/local/sbin to bind the installed bindir over")


def build_root():
    root = os.environ.get("FLOWFS_BUILD_ROOT")
    return Path(root) if root else flowfs_binary().resolve().parents[1]


class Installed:
    """A meson install --destdir of the build: 'files' maps an installed
    file's name (flowfs, fstab, flowfs.8) to its path under the scratch
    root."""

    def __init__(self, build, root):
        self.root = root
        out = subprocess.run(["meson", "install", "-C", str(build), "--destdir",
                              str(root), "--no-rebuild", "--quiet"],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, (
            f"meson install failed ({out.returncode}):\n{out.stdout}{out.stderr}")
        out = subprocess.run(["meson", "introspect", str(build), "--installed"],
                             capture_output=True, text=True, check=True)
        self.files = {}
        for dest in json.loads(out.stdout).values():
            self.files[os.path.basename(dest)] = root / dest.lstrip("/")
        self.options = {o["name"]: o["value"] for o in json.loads(subprocess.run(
            ["meson", "introspect", str(build), "--buildoptions"],
            capture_output=True, text=True, check=True).stdout)}

    def bindir(self):
        return self.files["flowfs"].parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return Installed(build_root(), tmp_path_factory.mktemp("root"))


@pytest.fixture(scope="module")
def token():
    return "flowfs-install-" + os.urandom(16).hex()


@pytest.fixture(scope="module")
def isim(make_module_sim, token_file):
    return make_module_sim(*sim_args(token_file))


def flowfs_daemons(mnt):
    """Pids of the flowfs processes whose command line names mnt."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"flowfs" and \
                os.fsencode(str(mnt)) in argv:
            pids.append(int(p.name))
    return pids


def mount_in_namespace(installed, tmp, mnt, mount_cmd, ip=IP, day=DAY):
    """Run mount_cmd in a private mount namespace with the installed
    bindir over /usr/local/sbin, list ip's folder and read its day's
    flows.csv through the mount, and unmount.  Returns (mounts line, ls,
    flows.csv text); fails with what the script and flowfs said."""
    out = tmp / "seen"
    out.mkdir()
    cmd = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
           NS_SCRIPT, "ns", str(installed.bindir()), str(mnt), ip,
           f"{ip}/{day}/flows.csv", str(out), *mount_cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        said, _ = proc.communicate(timeout=4 * STEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)        # the trap unmounts
        said, _ = proc.communicate()
    finally:
        left = []
        deadline = time.monotonic() + DAEMON_EXIT_S
        while True:
            left = flowfs_daemons(mnt)
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 0, (
        f"{' '.join(mount_cmd)} in a private namespace: status "
        f"{proc.returncode} (90 bind, 91 mount, 92 ls, 93 cat)\n{said}")
    assert not left, f"flowfs still running {DAEMON_EXIT_S} s after its unmount"
    assert not mounted_at(mnt), "the namespace's mount shows outside it"
    return ((out / "mounts").read_text(), (out / "ls").read_text().split(),
            (out / "file").read_text())


def check_seen(isim, url, seen, want_opts):
    """The mount as /proc/mounts shows it, the day listed, and the day's
    flows.csv holding exactly the collector's flows."""
    line, listing, text = seen
    fields = line.split()
    assert len(fields) >= 4, line
    assert fields[0] == url and fields[2] == "fuse.flowfs", line
    opts = fields[3].split(",")
    for o in want_opts:
        assert o in opts, f"{o} not in the mount's options: {line}"
    assert DAY in listing, listing[-5:]
    truth = isim.truth(IP, DAY_MS, DAY_MS + DAY_LEN_MS, list="ids")
    ids = [r["flowId"] for r in csv.DictReader(text.splitlines())]
    assert len(ids) == truth["count"] and set(ids) == set(truth["ids"]), (
        f"flows.csv holds {len(ids)} flows, the collector {truth['count']}")


def example_lines(path):
    return [ln for ln in path.read_text().splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def unit_settings(path):
    """{key: value} of a systemd unit file (one section's keys suffice)."""
    kv = {}
    for ln in example_lines(path):
        m = re.match(r"^(\w+)=(.*)$", ln)
        if m:
            kv[m.group(1)] = m.group(2)
    return kv


def test_meson_install_puts_programs_examples_and_man_pages(installed):
    bindir = installed.bindir()
    for prog in ("flowfs", "flowfetch", "flowsim"):
        p = installed.files.get(prog)
        assert p and p.parent == bindir, f"{prog} not installed in {bindir}"
        r = subprocess.run([str(p), "--help"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0 and prog in r.stdout, (prog, r.returncode, r.stderr)
    for ex in ("fstab", "flows.mount", "flows.automount"):
        p = installed.files.get(ex)
        assert p and p.is_file(), f"example {ex} not installed"
        assert p.parent.parts[-4:] == ("share", "doc", "flowfs", "examples"), p
    if installed.options.get("man"):
        for page in ("flowfs.8", "flowfetch.1", "flowsim.1"):
            p = installed.files.get(page)
            sec = page.rsplit(".", 1)[1]
            assert p and p.parent.name == "man" + sec, f"{page} not in man{sec}"
            assert p.read_text().lstrip().startswith((".TH", ".\\\"", "'\\\"")), page


def test_fstab_example_through_mount(installed, isim, token_file, tmp_path):
    """The installed fstab line, its URL, mount point, token file and cache
    replaced, mounts with mount -T SCRATCH_FSTAB MNT: noauto,
    x-systemd.automount and _netdev are dropped on the way, rw,dev,suid
    (mount.fuse3's) taken and overridden, allow_other kept."""
    lines = example_lines(installed.files["fstab"])
    assert len(lines) == 1, lines
    src, where, typ, opts, *rest = lines[0].split()
    assert typ == "fuse.flowfs" and where == "/flows", lines[0]
    mnt, cache = tmp_path / "flows", tmp_path / "cache"
    mnt.mkdir()
    new = []
    for o in opts.split(","):
        if o.startswith("token_file="):
            o = f"token_file={token_file}"
        elif o.startswith("cache="):
            o = f"cache={cache}"
        new.append(o)
    fstab = tmp_path / "fstab"
    fstab.write_text(f"{url_of(isim)} {mnt} {typ} {','.join(new)} {' '.join(rest)}\n")
    seen = mount_in_namespace(installed, tmp_path, mnt,
                              ["mount", "-T", str(fstab), str(mnt)])
    check_seen(isim, url_of(isim), seen,
               ["ro", "nosuid", "nodev", "allow_other", "default_permissions"])


def test_mount_t_as_the_example_unit(installed, isim, token_file, tmp_path):
    """mount WHAT MNT -t TYPE -o OPTIONS, as systemd runs the installed
    flows.mount (its What= and the options' paths replaced); the units'
    names match their Where= (systemd-analyze verify, where it is)."""
    unit = unit_settings(installed.files["flows.mount"])
    auto = unit_settings(installed.files["flows.automount"])
    assert unit["Where"] == auto["Where"] == "/flows", (unit, auto)
    assert unit["Type"] == "fuse.flowfs", unit
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            str(installed.files["flows.mount"]),
                            str(installed.files["flows.automount"])],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    mnt, cache = tmp_path / "flows", tmp_path / "cache"
    mnt.mkdir()
    opts = re.sub(r"token_file=[^,]*", f"token_file={token_file}", unit["Options"])
    opts = re.sub(r"cache=[^,]*", f"cache={cache}", opts)
    seen = mount_in_namespace(installed, tmp_path, mnt,
                              ["mount", url_of(isim), str(mnt), "-t", unit["Type"],
                               "-o", opts])
    check_seen(isim, url_of(isim), seen, ["ro", "nosuid", "nodev", "allow_other"])


def readme_fstab_lines(prefix):
    """The README's fstab lines whose source starts with prefix."""
    readme = Path(__file__).resolve().parents[2] / "README.md"
    return [ln.strip() for ln in readme.read_text().splitlines()
            if ln.startswith(prefix) and " fuse.flowfs " in ln]


@pytest.fixture(scope="module")
def nfdump_data(tmp_path_factory):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nfdump"))
    import archives
    import sshd
    gone = sshd.missing_tools()
    if gone:
        pytest.skip("tools missing: %s" % ", ".join(gone))
    return archives.build(tmp_path_factory.mktemp("nfdump")), sshd


@pytest.mark.parametrize("kind", ["nfdump:", "nfdump+ssh://"])
def test_readme_nfdump_fstab_line_through_mount(installed, nfdump_data, tmp_path, kind):
    """The README's fstab line for an nfdump archive, here and over ssh, its
    values replaced (the archive, the cache, the ssh identity and
    known_hosts of a private sshd on 127.0.0.1), mounts with mount -T
    SCRATCH_FSTAB MNT, and the day's flows.csv holds exactly nfdump's
    flows of it."""
    from test_nfdump import csv_flows, expected, same
    data, sshd = nfdump_data
    lines = readme_fstab_lines(kind)
    assert lines, "README has no fstab line for " + kind
    src, where, typ, opts, *rest = lines[0].split()
    arch = data["arch"]["pcapd-day"]
    mnt, cache = tmp_path / "flows", tmp_path / "cache"
    mnt.mkdir()
    q = ("day", "10.0.1.5", None, "2026-11-24", "2026-11-24T00:00", None)

    def line(source, extra):
        new = []
        for o in opts.split(","):
            k = o.split("=", 1)[0]
            new.append(f"{k}={extra[k]}" if k in extra else o)
        return f"{source} {mnt} {typ} {','.join(new)} {' '.join(rest)}\n"

    fstab = tmp_path / "fstab"
    if kind == "nfdump:":
        fstab.write_text(line("nfdump:" + arch, {"cache": cache, "tz": "UTC"}))
        seen = mount_in_namespace(installed, tmp_path, mnt,
                                  ["mount", "-T", str(fstab), str(mnt)],
                                  ip=q[1], day=q[3])
    else:
        with sshd.Sshd(tmp_path / "sshd") as server:
            fstab.write_text(line(
                "nfdump+ssh://root@127.0.0.1:%d%s" % (server.port, arch),
                {"cache": cache, "identity": server.identity,
                 "known_hosts": server.known_hosts}))
            seen = mount_in_namespace(installed, tmp_path, mnt,
                                      ["mount", "-T", str(fstab), str(mnt)],
                                      ip=q[1], day=q[3])
    mounts, listing, text = seen
    assert mounts.split()[2] == "fuse.flowfs", mounts
    assert q[3] in listing, listing
    same(csv_flows(text), expected(arch, q), "fstab " + kind)
