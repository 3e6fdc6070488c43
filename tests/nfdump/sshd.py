"""sshd: a private OpenSSH server on 127.0.0.1 for the nfdump+ssh tests.

    with Sshd(tmpdir) as s:
        s.port, s.config (an ssh_config for the client: Host 'collector'),
        s.identity, s.known_hosts, s.url('/path')

Everything lives in tmpdir: a host key and a client key made with
ssh-keygen, sshd_config (ListenAddress 127.0.0.1, the port, that host key,
AuthorizedKeysFile the client key's file, no password, no keyboard
interactive, no PAM, StrictModes off since a test's directories need not
be the user's), a known_hosts file holding the host key for
[127.0.0.1]:PORT, and a client config naming all of them.  sshd runs in
the foreground (-D -e, its log in tmpdir/sshd.log), started and stopped
(SIGTERM, then SIGKILL) by its own pid.  sshd has no port 0: a port is
picked by binding 127.0.0.1:0 and closing it, and sshd is started again
on another when that port was taken meanwhile.  Readiness: sshd's log says
"Server listening on 127.0.0.1 port N".

sshd as root needs its privilege separation directory (/run/sshd); it is
made when missing.  Without /usr/sbin/sshd, ssh or ssh-keygen the caller
skips (missing_tools()).
"""

import os
import shutil
import signal
import socket
import subprocess
import time

SSHD = "/usr/sbin/sshd"
START_DEADLINE_S = 10.0
TRIES = 5


def missing_tools():
    out = []
    if not os.access(SSHD, os.X_OK):
        out.append(SSHD)
    for t in ("ssh", "ssh-keygen"):
        if not shutil.which(t):
            out.append(t)
    return out


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                    "flowfs-test", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL, timeout=30)
    return path


class SshdError(RuntimeError):
    pass


class Sshd:
    def __init__(self, tmp, user="root"):
        self.tmp = str(tmp)
        self.user = user
        self.proc = None
        self.port = None
        os.makedirs(self.tmp, exist_ok=True)
        p = lambda n: os.path.join(self.tmp, n)  # noqa: E731
        self.host_key = keygen(p("host_ed25519"))
        self.identity = keygen(p("client_ed25519"))
        self.other_identity = keygen(p("stranger_ed25519"))
        self.authorized = p("authorized_keys")
        shutil.copyfile(self.identity + ".pub", self.authorized)
        self.known_hosts = p("known_hosts")
        self.empty_known_hosts = p("known_hosts.empty")
        open(self.empty_known_hosts, "w").close()
        self.sshd_config = p("sshd_config")
        self.config = p("ssh_config")
        self.log = p("sshd.log")
        self.pidfile = p("sshd.pid")

    # ---- files -------------------------------------------------------------

    def _write_server_config(self):
        with open(self.sshd_config, "w") as f:
            f.write(f"""ListenAddress 127.0.0.1
Port {self.port}
HostKey {self.host_key}
PidFile {self.pidfile}
AuthorizedKeysFile {self.authorized}
PubkeyAuthentication yes
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
""")

    def _write_client_files(self):
        with open(self.host_key + ".pub") as f:
            kind, key = f.read().split()[:2]
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kind} {key}\n")
        with open(self.config, "w") as f:
            f.write(f"""Host collector
    HostName 127.0.0.1
    Port {self.port}
    User {self.user}
    IdentityFile {self.identity}
    IdentitiesOnly yes
    UserKnownHostsFile {self.known_hosts}
    GlobalKnownHostsFile /dev/null
""")

    def url(self, path, host="collector"):
        return f"nfdump+ssh://{host}{path}"

    # ---- process -----------------------------------------------------------

    def start(self):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        last = ""
        for _ in range(TRIES):
            self.port = free_port()
            self._write_server_config()
            if self._start_once():
                self._write_client_files()
                return self
            last = self.log_text()
        raise SshdError(f"sshd did not start in {TRIES} tries:\n{last[-2000:]}")

    def _start_once(self):
        log = open(self.log, "wb")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.sshd_config],
                                     stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            text = self.log_text()
            if f"Server listening on 127.0.0.1 port {self.port}" in text:
                return True
            if self.proc.poll() is not None:
                if "Address already in use" in text:
                    self.proc = None
                    return False
                raise SshdError(f"sshd exited with {self.proc.returncode}:\n"
                                f"{text[-2000:]}")
            time.sleep(0.02)
        self.stop()
        raise SshdError(f"sshd not listening within {START_DEADLINE_S} s:\n"
                        f"{self.log_text()[-2000:]}")

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def pause(self):
        """SIGSTOP the listening sshd: connections hang before its banner."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
