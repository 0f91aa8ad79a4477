"""A private PostgreSQL server for the tests and benchmarks: Debian's postgresql binaries, a cluster in a
temporary folder, a Unix socket only (no TCP port), stopped and deleted at the end. initdb refuses to run as
root, so as root the cluster belongs to the `postgres` account."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

INSTALL = "apt-get install -y postgresql   (Debian/Ubuntu; the tests start their own private server)"


def find_bin() -> Path | None:
    """The folder holding initdb and pg_ctl, newest PostgreSQL first."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]),
                            reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class Cluster:
    def __init__(self) -> None:
        self.bin = find_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed: " + INSTALL)
        self.dir = Path(tempfile.mkdtemp(prefix="taiwa-pg-"))
        self.data = self.dir / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.user = "postgres" if self.as_user else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> "Cluster":
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8",
                  "--locale=C", "--no-sync")
        opts = (f"-k {self.dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                f"-c full_page_writes=off -c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"),
                  "-w", "start")
        return self

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@/{dbname}?host={self.dir}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, template: str | None = None) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self.admin(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
