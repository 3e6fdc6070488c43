"""A throwaway PostgreSQL cluster for the shared cache's tests.

``Cluster`` runs Debian's own ``initdb`` into a temporary directory and
starts it with ``pg_ctl``, listening only on a Unix socket inside that
directory (``listen_addresses=''``: no TCP at all).  The database ``flows``
belongs to a role ``analyst`` that is no superuser, as a team's database
would (README, "For teams"); the superuser ``flowfs`` is only for the
tests' own checks.  ``stop()`` stops the server and removes the directory;
use the cluster as a context manager, or call stop in a finally, so that
it is stopped even when a test fails.

initdb refuses to run as root: as root, the cluster's files belong to the
unprivileged user ``nobody`` and every server command runs as it
(``runuser -u nobody``); otherwise they run as the calling user.

``find_bindir()`` returns None when PostgreSQL is not installed, and the
tests then skip with a message naming the package.
"""

import glob
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

CTL_TIMEOUT_S = 60
SUPERUSER = "flowfs"
ROLE = "analyst"
DBNAME = "flows"


def find_bindir():
    """The directory of initdb and pg_ctl, or None: pg_config's, else the
    newest /usr/lib/postgresql/*/bin that has both."""
    cands = []
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True,
                                 text=True, timeout=10, check=True).stdout.strip()
            cands.append(out)
        except (subprocess.SubprocessError, OSError):
            pass
    cands += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for d in cands:
        if os.access(os.path.join(d, "initdb"), os.X_OK) and \
                os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return d
    return None


MISSING = ("PostgreSQL is not installed: the shared cache's tests need Debian's "
           "'postgresql' package (apt-get install postgresql; ./dev test installs it)")


class Cluster:
    def __init__(self):
        self.bindir = find_bindir()
        if self.bindir is None:
            raise RuntimeError(MISSING)
        self.dir = Path(tempfile.mkdtemp(prefix="flowfs-pg-"))
        self.data = self.dir / "data"
        self.sock = self.dir
        self.log = self.dir / "server.log"
        self.port = random.randint(20000, 60000)
        self.as_user = []
        if os.geteuid() == 0:
            os.chmod(self.dir, 0o700)
            shutil.chown(self.dir, "nobody", "nogroup")
            self.as_user = ["runuser", "-u", "nobody", "--"]
        self.running = False

    def _srv(self, *args, check=True):
        """A server program (initdb, pg_ctl) as the cluster's owner."""
        return subprocess.run(self.as_user + [os.path.join(self.bindir, args[0])]
                              + list(args[1:]), capture_output=True, text=True,
                              timeout=CTL_TIMEOUT_S, check=check, cwd=self.dir)

    def create(self):
        self._srv("initdb", "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8",
                  "--locale=C", "--auth=trust", "--no-sync")
        self.start()
        self.psql(f"CREATE ROLE {ROLE} LOGIN", db="postgres")
        self.psql(f"CREATE DATABASE {DBNAME} OWNER {ROLE}", db="postgres")
        return self

    def start(self):
        opts = (f"-c listen_addresses='' -k {self.sock} -p {self.port}"
                " -c fsync=off -c max_connections=60")
        self._srv("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", str(CTL_TIMEOUT_S), "-o", opts, "start")
        self.running = True

    def restart(self):
        """Stop (-m fast: every connection is cut) and start again.  Not
        pg_ctl restart, which forgets -l: the server would then write into
        our pipe and keep it open."""
        self._srv("pg_ctl", "-D", str(self.data), "-w", "-t", str(CTL_TIMEOUT_S),
                  "-m", "fast", "stop")
        self.running = False
        self.start()

    def stop_server(self):
        if self.running:
            self._srv("pg_ctl", "-D", str(self.data), "-w", "-t", str(CTL_TIMEOUT_S),
                      "-m", "immediate", "stop", check=False)
            self.running = False

    def stop(self):
        """Stop the server (if it runs) and remove the directory."""
        try:
            self.stop_server()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def conninfo(self, user=ROLE, db=DBNAME):
        return f"host={self.sock} port={self.port} dbname={db} user={user}"

    def url(self, user=ROLE, db=DBNAME):
        """The same target as a postgresql:// URL (the socket's directory
        percent-encoded as the host)."""
        host = str(self.sock).replace("/", "%2F")
        return f"postgresql://{user}@{host}:{self.port}/{db}"

    def psql(self, sql, db=DBNAME):
        """Run sql as the superuser; its rows as text (psql -At)."""
        r = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-At", "-v",
                            "ON_ERROR_STOP=1", "-h", str(self.sock), "-p", str(self.port),
                            "-U", SUPERUSER, "-d", db, "-c", sql],
                           capture_output=True, text=True, timeout=CTL_TIMEOUT_S)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {sql}: {r.stderr.strip()}")
        return r.stdout.strip()

    def __enter__(self):
        try:
            return self.create()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        return False
