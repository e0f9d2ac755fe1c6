"""A PostgreSQL server of a test's own, for the tests that stop or restart the database.

The machine's shared PostgreSQL (5432) is never restarted: other runs use it. This one is made with
the machine's own binaries (`initdb` and `pg_ctl` of the newest /usr/lib/postgresql/*/bin, or
`LINLI_PG_BIN`) in a temporary folder, listens on a free port of 127.0.0.1 only, trusts local
connections, and is removed at the end. When the tests run as root (initdb refuses root), it runs
as the `postgres` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from linli_kit.testing.infra import InfraUnavailable, stable_port

RUN_AS = "postgres"  # the user the server runs as when the tests run as root
CTL_SECONDS = 120


def _free_port() -> int:
    # Below the ephemeral range: these servers are stopped and started again (see stable_port).
    return stable_port()


def _bin_dir() -> Path:
    given = os.environ.get("LINLI_PG_BIN")
    if given:
        return Path(given)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found or not (found[-1] / "initdb").exists():
        raise InfraUnavailable(
            "PostgreSQL's initdb and pg_ctl were not found in /usr/lib/postgresql/*/bin: install the "
            "server (apt-get install postgresql) or set LINLI_PG_BIN to the folder holding them"
        )
    return found[-1]


class PrivatePostgres:
    """`start` makes and starts the server; `stop`/`start` (or `restart`) it; `close` removes it."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.folder = Path(tempfile.mkdtemp(prefix="linli-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = _free_port()
        self.user = RUN_AS if os.geteuid() == 0 else None
        self.folder.chmod(0o755)
        if self.user is not None:
            account = pwd.getpwnam(self.user)
            os.chown(self.folder, account.pw_uid, account.pw_gid)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> str:
        result = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=CTL_SECONDS,
            user=self.user,
            group=self.user,
            extra_groups=[] if self.user else None,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise AssertionError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}\n{log}")
        return result.stdout

    def start(self) -> None:
        if not self.data.exists():
            # --no-sync: the folder is thrown away; the server itself still syncs as configured.
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: a clean shutdown; `immediate`: the server's processes quit at once, as in a
        crash, and the next start recovers from the write-ahead log."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def close(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
