"""A chain's payment system pointed at a PostgreSQL it cannot use: the maintainer gets one line saying why,
at once, and no traceback: a role that does not exist, a database that does not exist, a database the
role may not make tables in. Against a real throwaway PostgreSQL (tests/fixtures/payments.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg

from payments.db.cluster import PostgresCluster
from tests.test_payments_config import CLI, ROOT, one_line_failure, write_config


def url_as(cluster: PostgresCluster, role: str, database: str, password: str = "") -> str:
    secret = f":{password}" if password else ""
    return cluster.url(database).replace("postgres@", f"{role}{secret}@", 1)


def test_a_role_that_does_not_exist_is_one_line_at_once_without_the_password(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    postgres_cluster.create_database("store_norole")
    url = url_as(postgres_cluster, "nobody", "store_norole", password="s3cret-pw")
    config = write_config(tmp_path, store={"database_url": url})
    line = one_line_failure(["payments", "init", "--config", str(config)])
    assert line.startswith("Error: cannot connect to PostgreSQL at ")
    assert 'role "nobody" does not exist' in line
    assert "s3cret-pw" not in line


def test_a_database_that_does_not_exist_is_one_line(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    config = write_config(tmp_path, store={"database_url": postgres_cluster.url("no_such_store")})
    line = one_line_failure(["payments", "init", "--config", str(config)])
    assert 'database "no_such_store" does not exist' in line


def test_a_database_the_role_may_not_make_tables_in_says_to_make_it_its_owner(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    # PostgreSQL 15 on: only the owner of a database makes tables in its public schema.
    with psycopg.connect(postgres_cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE ROLE ps_clerk LOGIN")
        conn.execute('CREATE DATABASE "store_notowner"')
    with psycopg.connect(postgres_cluster.url("store_notowner"), autocommit=True) as conn:
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    config = write_config(
        tmp_path, store={"database_url": url_as(postgres_cluster, "ps_clerk", "store_notowner")}
    )
    line = one_line_failure(["payments", "init", "--config", str(config)])
    assert "may not make its tables" in line and "createdb --owner" in line
    with psycopg.connect(postgres_cluster.url(), autocommit=True) as conn:
        conn.execute('CREATE DATABASE "store_owned" OWNER ps_clerk')
    config = write_config(
        tmp_path, store={"database_url": url_as(postgres_cluster, "ps_clerk", "store_owned")}
    )
    command = [*CLI, "payments", "init", "--config", str(config)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
