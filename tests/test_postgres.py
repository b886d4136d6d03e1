"""A real PostgreSQL: the private test cluster, and the README's PostgreSQL tracking server
with several workers splitting one sweep."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections import Counter

import pytest
import sqlalchemy as sa

from tests._postgres import PostgresCluster
from tests.conftest import (
    MLFLOW,
    REPO,
    clean_env,
    free_port,
    start_mlflow_server,
    stop_mlflow_server,
)
from tests.test_sweep import all_runs, sweep_argv


def readme_commands(heading: str) -> list[str]:
    """The shell commands (continuation lines joined) under a comment line in the README."""
    text = (REPO / "README.md").read_text()
    block = text[text.index(heading) + len(heading):].split("\n\n")[0].split("```")[0]
    return [c.strip() for c in re.sub(r"\\\n\s*", "", block).splitlines()
            if c.strip() and not c.startswith("#")]


def with_options(argv: list[str], **values: str) -> list[str]:
    """argv with the values of some --options replaced (each must be there)."""
    argv = list(argv)
    for name, value in values.items():
        flag = f"--{name.replace('_', '-')}"
        assert flag in argv, f"the README's command has no {flag}"
        argv[argv.index(flag) + 1] = value
    return argv


@pytest.mark.slow
def test_postgres_url_is_a_fresh_private_database_with_a_password(postgres_url, postgres):
    other = postgres.create_database("another")
    assert other != postgres_url and postgres_url.startswith("postgresql://")
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:  # empty, owned by its user, writable
        assert conn.execute(sa.text("select count(*) from pg_tables "
                                    "where schemaname = 'public'")).scalar() == 0
        conn.execute(sa.text("create table t (x int)"))
    with sa.create_engine(other).connect() as conn:  # a database of its own
        assert conn.execute(sa.text("select to_regclass('public.t')")).scalar() is None
    wrong = re.sub(r":[0-9a-f]+@", ":wrong@", postgres_url)
    with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
        sa.create_engine(wrong).connect()
    engine.dispose()


@pytest.mark.slow
def test_workers_split_a_sweep_on_the_readmes_postgresql_server(postgres: PostgresCluster,
                                                                 tmp_path):
    # the README's PostgreSQL commands, run against the private cluster
    setup = readme_commands("# PostgreSQL store")
    psql = [shlex.split(c) for c in setup if c.startswith("sudo -u postgres psql -c")]
    assert len(psql) == 2
    password = "s3cret"
    postgres.sql(*(c[-1].replace("'PASSWORD'", f"'{password}'") for c in psql))
    assert any(c.startswith('pip install "psycopg[binary]"') for c in setup)
    (server,) = [shlex.split(c) for c in setup if c.startswith("mlflow server")]
    readme_uri = server[server.index("--backend-store-uri") + 1]
    # issue 20: no password in argv: the README's server reads it from ~/.pgpass (libpq)
    assert readme_uri == "postgresql://mlflow@127.0.0.1:5432/mlflow"
    assert server[server.index("--host") + 1] == "127.0.0.1"

    port = free_port()
    store = postgres.url("mlflow", "mlflow", password).replace(f":{password}@", "@")
    argv = with_options(server, port=str(port), backend_store_uri=store,
                        artifacts_destination=str(tmp_path / "artifacts"))
    pgpass = tmp_path / "pgpass"  # the README's ~/.pgpass, as PGPASSFILE
    pgpass.write_text(f"127.0.0.1:{postgres.port}:mlflow:mlflow:{password}\n")
    pgpass.chmod(0o600)
    proc = start_mlflow_server(tmp_path, port, [  # this venv's mlflow
        "env", f"PGPASSFILE={pgpass}", MLFLOW, *argv[1:]])
    uri = f"http://127.0.0.1:{port}"
    try:
        # two sweep commands (as on two machines), one with two worker processes, whose
        # queue is a PostgreSQL database too
        queue = postgres.create_database("sweep_queue")
        sweep = [sys.executable, "-m", "mlbench", *sweep_argv(
            strategies="global_weight,random", compressions="2,4", seeds="0"),
            "--tracking-uri", uri, "--storage", queue]
        procs = [subprocess.Popen([*sweep, "--workers", workers], cwd=tmp_path, text=True,
                                  env=clean_env(uri), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
                 for workers in ("2", "1")]
        outs = [p.communicate(timeout=600) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-3000:] for o in outs]
        assert not [o for o in outs if queue.split("@")[0].split(":")[-1] in o[0] + o[1]]

        prunes = all_runs(uri, "prune")
        seen = [(r.info.run_name, r.info.status, r.data.tags.get("mlbench.worker")) for r in prunes]
        finished = Counter(r.data.tags["mlbench.config_hash"] for r in prunes
                           if r.info.status == "FINISHED")
        assert len(finished) == 4 and set(finished.values()) == {1}, seen  # each cell once
        (sweep_run,) = all_runs(uri, "sweep")  # both commands joined one sweep run
        assert {r.data.tags["mlflow.parentRunId"] for r in prunes} == {sweep_run.info.run_id}
        assert len({r.data.params["base_run_id"] for r in prunes}) == 1  # one base model
        trained = [r for r in all_runs(uri, "train") if r.info.status == "FINISHED"]
        assert len(trained) == 1
    finally:
        stop_mlflow_server(proc)
    # and all of it lives in PostgreSQL
    engine = sa.create_engine(postgres.url("mlflow", "mlflow", password))
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text(
            "select run_uuid, status from runs where lifecycle_stage = 'active'")).all())
    engine.dispose()
    assert {r.info.run_id for r in prunes} <= set(stored)
    assert stored[sweep_run.info.run_id] == "FINISHED"
