"""A private PostgreSQL cluster for tests: initdb in a temp dir, a free loopback port.

Nothing here knows about MLflow or Optuna: a test asks for a fresh database and gets a
``postgresql://user:password@127.0.0.1:port/name`` URL that any SQLAlchemy client takes.
PostgreSQL refuses to run as root, so under root (CI, sandboxes) the cluster belongs to
the ``postgres`` OS user and its commands run through ``runuser``.

    cluster = PostgresCluster.start(port)
    url = cluster.create_database("mlflow")
    ...
    cluster.stop()
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

OWNER = "postgres"  # the OS user that runs the cluster when the tests run as root
SUPERUSER = "postgres"  # the cluster's superuser; it logs in through the private socket


def find_bin_dir() -> Path | None:
    """The folder of initdb/pg_ctl/psql: Debian's /usr/lib/postgresql/<v>/bin, else PATH."""
    def version(initdb: str) -> tuple[int, ...]:  # /usr/lib/postgresql/15/bin/initdb -> (15,)
        return tuple(int(p) for p in Path(initdb).parts[-3].split(".") if p.isdigit())

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    found = debian[-1] if debian else shutil.which("initdb")
    return Path(found).parent if found else None


def _as_owner() -> list[str]:
    """The prefix that runs a command as the cluster's owner (none unless we are root)."""
    return ["runuser", "-u", OWNER, "--"] if os.geteuid() == 0 else []


@dataclass
class PostgresCluster:
    """A running PostgreSQL cluster that only this process knows about."""

    bin_dir: Path
    folder: Path  # data/, the socket and the log; removed by stop()
    port: int

    @classmethod
    def start(cls, port: int, bin_dir: Path | None = None) -> PostgresCluster:
        """initdb a new cluster in a temp dir and start it on 127.0.0.1:port.

        Local (socket) logins are trusted, TCP logins need a password (scram-sha-256).
        fsync is off: a test cluster never needs to survive a crash.
        """
        bin_dir = bin_dir or find_bin_dir()
        if bin_dir is None:
            raise FileNotFoundError("PostgreSQL is not installed: no initdb")
        # not under pytest's tmp_path: that is private to root, and the owner must reach it
        folder = Path(tempfile.mkdtemp(prefix="mlbench-pg-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam(OWNER)
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        cluster = cls(bin_dir, folder, port)
        try:
            cluster._run("initdb", "-D", str(folder / "data"), "-U", SUPERUSER, "-E", "UTF8",
                         "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
                         "--no-instructions")
            options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off")
            cluster._run("pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "server.log"),
                         "-o", options, "-w", "-t", "60", "start")
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _run(self, program: str, *args: str) -> str:
        done = subprocess.run([*_as_owner(), str(self.bin_dir / program), *args],
                              cwd=self.folder, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed ({done.returncode}): "
                               f"{done.stderr.strip()}\n{tail}")
        return done.stdout

    def sql(self, *statements: str, database: str = "postgres") -> str:
        """Run SQL statements as the superuser through the private socket."""
        args = ["-h", str(self.folder), "-p", str(self.port), "-U", SUPERUSER, "-d", database,
                "-v", "ON_ERROR_STOP=1", "-qAt"]
        for statement in statements:
            args += ["-c", statement]
        return self._run("psql", *args)

    def create_database(self, name: str, user: str | None = None) -> str:
        """A new database owned by a new login role; returns its TCP URL with password."""
        user = user or name
        password = secrets.token_hex(8)
        self.sql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'",
                 f"CREATE DATABASE {name} OWNER {user}")
        return self.url(name, user, password)

    def url(self, database: str, user: str, password: str) -> str:
        """The SQLAlchemy/libpq URL of a database on this cluster."""
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop the server (if it runs) and delete the cluster."""
        if (self.folder / "data" / "postmaster.pid").exists():
            subprocess.run([*_as_owner(), str(self.bin_dir / "pg_ctl"), "-D",
                            str(self.folder / "data"), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=120)
        shutil.rmtree(self.folder, ignore_errors=True)
