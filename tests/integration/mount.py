"""Mounting flowfs for the integration tests, in the style of libfuse's own
tests: flowfs runs in the foreground (``-f``) as a child process; the test
polls ``os.path.ismount`` until the mount appears (10 s), fails with
flowfs's stderr when it died, and always unmounts with ``fusermount3 -u -z``
and then waits for the process (5 s, then SIGKILL of its own pid only).

A machine without /dev/fuse or fusermount3 skips these tests (never a
silent pass); a missing flowfs binary is a failure.

Binary: $FLOWFS, else build/fs/flowfs under the repository root.
Only the Python standard library and pytest are used.
"""

import errno
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FLOWFS = REPO / "build/fs/flowfs"

MOUNT_DEADLINE_S = 10.0
# How long flowfs may take to exit after its unmount before it is called
# hung: its workers finish or cancel their queries and close the cache.
# 5 s was passed under ASan on a machine loaded to 8 (two CI runs on
# 2026-12-06, test_property and test_sna teardowns); a hang is still one.
EXIT_DEADLINE_S = 15.0

# Lines of flowfs's stderr that make a test fail unless it expects them.
BAD_LINE = re.compile(r"error|abort", re.IGNORECASE)
# Lines of a sanitizer's report (ASan, UBSan, TSan, whose "WARNING:
# ThreadSanitizer: data race" says neither error nor abort): they fail a
# test whatever it expects.
SANITIZER_LINE = re.compile(r"Sanitizer|runtime error:")


def flowfs_binary():
    return Path(os.environ.get("FLOWFS") or DEFAULT_FLOWFS)


def sanitizer_env():
    """The sanitizers' options of this environment (ASAN_OPTIONS,
    TSAN_OPTIONS, ...), for a process started with an environment of its
    own."""
    return {k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")}


def fail_on_sanitizer(what, text):
    """Fail the test when 'text', the stderr of the program 'what', holds
    a sanitizer's report."""
    if any(SANITIZER_LINE.search(ln) for ln in text.splitlines()):
        pytest.fail(f"a sanitizer's report on {what}'s stderr:\n"
                    f"{text[-6000:]}", pytrace=False)


def require_flowfs():
    b = flowfs_binary()
    if not (b.is_file() and os.access(b, os.X_OK)):
        pytest.fail(f"flowfs binary not found or not executable: {b} "
                    f"(build it with ninja -C build, or set FLOWFS)",
                    pytrace=False)
    return b


def fuse_skip_reason():
    """Why FUSE cannot be used here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK) and not shutil.which(
            "fusermount3"):
        return "/dev/fuse is not accessible and there is no fusermount3"
    if not shutil.which("fusermount3"):
        return "no fusermount3 on this machine"
    return None


def require_fuse():
    why = fuse_skip_reason()
    if why:
        pytest.skip(why)


def _unescape_mount_field(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mounts():
    """[(source, mountpoint, fstype, options)] from /proc/mounts."""
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4:
                out.append(tuple(_unescape_mount_field(p) for p in parts[:4]))
    return out


def mounted_at(path):
    """The /proc/mounts entries whose mount point is path."""
    path = os.path.realpath(path)
    return [m for m in mounts() if m[1] == path]


def clean_env(**extra):
    """The environment for flowfs: no FLOWFS_TOKEN unless given."""
    env = {k: v for k, v in os.environ.items() if k != "FLOWFS_TOKEN"}
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


class MountError(AssertionError):
    pass


class Mount:
    """One flowfs process in the foreground, mounted at mnt."""

    def __init__(self, url, mnt, cache, token_file=None, opts=(), args=(),
                 env=None, binary=None, stderr_path=None, cwd=None):
        self.binary = Path(binary) if binary else require_flowfs()
        self.url = url
        self.mnt = Path(mnt)
        self.cache = Path(cache) if cache else None
        self.token_file = token_file
        self.opts = list(opts)
        self.args = list(args)
        self.env = env if env is not None else clean_env()
        self.cwd = cwd
        self.stderr_path = Path(stderr_path or
                                (self.mnt.parent / (self.mnt.name + ".stderr")))
        self.proc = None
        self.returncode = None
        self.want_status = 0     # the exit status expected after stop()
        self.killed = False
        self.unmount_output = ""
        self._stderr = None

    # ---- process ------------------------------------------------------------

    def options(self):
        o = []
        if self.token_file:
            o.append(f"token_file={self.token_file}")
        if self.cache:
            o.append(f"cache={self.cache}")
        o.extend(self.opts)
        return o

    def cmdline(self):
        cmd = [str(self.binary), "-f"]
        if self.options():
            cmd += ["-o", ",".join(self.options())]
        return cmd + self.args + [self.url, str(self.mnt)]

    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self):
        self.mnt.mkdir(parents=True, exist_ok=True)
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.cmdline(), stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr,
                                     env=self.env, cwd=self.cwd)
        deadline = time.monotonic() + MOUNT_DEADLINE_S
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self._stderr.close()
                raise MountError(
                    f"flowfs exited with status {rc} before mounting\n"
                    f"command: {' '.join(self.cmdline())}\n"
                    f"stderr:\n{self.stderr_text()[-4000:]}")
            if os.path.ismount(self.mnt):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise MountError(
                    f"flowfs did not mount {self.mnt} within "
                    f"{MOUNT_DEADLINE_S} s\ncommand: {' '.join(self.cmdline())}"
                    f"\nstderr:\n{self.stderr_text()[-4000:]}")
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Unmount (lazily), wait for flowfs (5 s), SIGKILL its pid after
        that.  Returns its exit status.  Never raises."""
        if self.proc is None:
            return None
        if mounted_at(self.mnt) or os.path.ismount(self.mnt):
            try:
                r = subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)],
                                   capture_output=True, text=True, timeout=10)
                self.unmount_output = r.stdout + r.stderr
            except subprocess.TimeoutExpired:
                self.unmount_output = "fusermount3 -u -z timed out"
        if self.returncode is None:
            try:
                self.proc.wait(timeout=EXIT_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.killed = True
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                if mounted_at(self.mnt):
                    subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)],
                                   capture_output=True, timeout=10)
            self.returncode = self.proc.returncode
            if self._stderr and not self._stderr.closed:
                self._stderr.close()
        return self.returncode

    # ---- checks ------------------------------------------------------------------

    def bad_lines(self, allowed=(), since=0):
        """Lines of stderr (from byte offset 'since') that say error or
        abort and match none of the 'allowed' regexes, and every line of a
        sanitizer's report."""
        text = self.stderr_text()[since:]
        pats = [re.compile(a, re.IGNORECASE) for a in allowed]
        return [ln for ln in text.splitlines()
                if SANITIZER_LINE.search(ln) or
                (BAD_LINE.search(ln) and not any(p.search(ln) for p in pats))]

    def stderr_size(self):
        try:
            return self.stderr_path.stat().st_size
        except OSError:
            return 0

    def problems(self, allowed=(), since=0):
        """Everything wrong with this mount's life so far, as text lines."""
        out = []
        want_status = self.want_status
        bad = self.bad_lines(allowed, since)
        if bad:
            out.append("unexpected error/abort lines on flowfs's stderr:\n  "
                       + "\n  ".join(bad[:30]))
        if self.returncode is not None:
            if self.killed:
                out.append(f"flowfs did not exit within {EXIT_DEADLINE_S} s "
                           f"of fusermount3 -u -z (SIGKILLed)")
            elif want_status is not None and self.returncode != want_status:
                out.append(f"flowfs exited with status {self.returncode} "
                           f"after unmount (want {want_status})")
        if mounted_at(self.mnt):
            out.append(f"{self.mnt} is still mounted: {mounted_at(self.mnt)}")
        return out

    def path(self, *parts):
        return self.mnt.joinpath(*parts)


class MountFactory:
    """Mounts for one test (or module); unmounts them all afterwards and
    reports each one's problems (stderr errors, exit status, left mounted)."""

    def __init__(self, tmpdir, url=None, token_file=None):
        self.tmpdir = Path(tmpdir)
        self.url = url
        self.token_file = token_file
        self.mounts = []
        self.allowed = []       # regexes of expected stderr error lines

    def allow(self, *patterns):
        self.allowed.extend(patterns)

    def __call__(self, url=None, opts=(), cache=None, token_file=None,
                 name=None, env=None, start=True, cwd=None):
        require_fuse()
        i = len(self.mounts)
        name = name or f"mnt{i}"
        mnt = self.tmpdir / name
        if cache is None:
            cache = self.tmpdir / f"{name}-cache"
        elif cache is False:
            cache = None            # no cache= option (given in opts, or none)
        m = Mount(url or self.url, mnt, cache,
                  token_file=token_file or self.token_file, opts=opts, env=env,
                  cwd=cwd)
        self.mounts.append(m)
        if start:
            m.start()
        return m

    def stop_all(self):
        for m in self.mounts:
            m.stop()

    def finish(self):
        """Unmount them all; fail the test with every problem found."""
        self.stop_all()
        probs = self.problems()
        if probs:
            pytest.fail("\n".join(probs), pytrace=False)

    def problems(self):
        out = []
        for m in self.mounts:
            if m.proc is None:
                continue
            for p in m.problems(self.allowed):
                out.append(f"[{m.mnt}] {p}")
        return out


def run(cmd, timeout=120, check=False, **kw):
    """subprocess.run with captured output and a duration attribute."""
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    r.duration = time.monotonic() - t0
    if check and r.returncode != 0:
        raise AssertionError(
            f"{cmd!r} exited with {r.returncode}\nstdout: "
            f"{r.stdout[-2000:]!r}\nstderr: {r.stderr[-2000:]!r}")
    return r


# ---- a mount shared by a module's tests --------------------------------------------

def module_mount(tmp_path_factory, url, token_file, opts=(), allowed=()):
    """A generator for a module-scoped fixture: one mount for the module's
    tests, unmounted at the end; its problems (stderr error lines but the
    'allowed' regexes, exit status, left mounted) fail the module."""
    require_fuse()
    f = MountFactory(tmp_path_factory.mktemp("flowfs"), url, token_file)
    f.allow(*allowed)
    m = f(opts=opts, name="mnt")
    try:
        yield m
    finally:
        f.finish()


def watched(m, allowed=()):
    """A generator for a test-scoped fixture over a module's mount: after
    the test, flowfs is alive and its stderr holds no new error line but
    the 'allowed' ones."""
    since = m.stderr_size()
    yield m
    probs = []
    if not m.alive():
        probs.append(f"flowfs died (status {m.proc.poll()})")
    bad = m.bad_lines(allowed, since)
    if bad:
        probs.append("unexpected error/abort lines on flowfs's stderr:\n  "
                     + "\n  ".join(bad[:30]))
    if probs:
        pytest.fail("\n".join(probs) + "\nstderr tail:\n"
                    + m.stderr_text()[-3000:], pytrace=False)


# ---- reading the tree ---------------------------------------------------------

# A listing, a stat, .progress: "answer in under 5 ms" (docs/design.md); we
# allow a generous second for process start-up on a loaded machine, times
# $FLOWFS_TEST_SLOWDOWN where a sanitizer slows flowfs down (the TSan
# build's tests set it: tests/integration/meson.build).
QUICK_S = 1.0 * float(os.environ.get("FLOWFS_TEST_SLOWDOWN") or 1)


def errno_of(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def wait_for(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def progress(folder):
    """.progress of a folder, read with a timing."""
    t0 = time.monotonic()
    text = (Path(folder) / ".progress").read_text()
    return text, time.monotonic() - t0


def expect_failure(path, errname, want_errno, timeout):
    """cat fails with strerror(want_errno) and open(2) with want_errno."""
    t0 = time.monotonic()
    r = run(["cat", str(path)], timeout=timeout + 30)
    took = time.monotonic() - t0
    assert r.returncode != 0, "cat succeeded"
    assert os.strerror(want_errno).encode() in r.stderr, \
        f"want {errname}: {r.stderr!r}"
    assert took < timeout, f"{errname} after {took:.1f} s"
    e = errno_of(lambda p: open(p, "rb").close(), path)
    assert e == want_errno, f"open: {errno.errorcode.get(e, e)}, " \
                            f"want {errname}"
    return r.stderr


def check_failed_progress(folder, *words):
    text, took = progress(folder)
    assert took < QUICK_S
    assert "state: failed" in text, text
    line = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert line, text
    for w in words:
        assert re.search(w, line[0], re.IGNORECASE), (w, text)
    return text
