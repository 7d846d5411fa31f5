"""The test harness's own servers really work: real PostgreSQL, Redis and S3 over the network."""

from __future__ import annotations

import socket
import uuid

import boto3
import botocore.exceptions
import psycopg
import pytest
import redis

from tests.utils.services import PostgresServer, RedisServer, TcpGate, free_port, wait_for_port


def test_free_port_and_wait_for_port_timeout() -> None:
    port = free_port()
    assert 1024 < port < 65536
    with pytest.raises(TimeoutError, match=str(port)):
        wait_for_port("127.0.0.1", port, timeout=0.2)


def test_postgres_round_trip(postgres: PostgresServer) -> None:
    assert postgres.url == f"postgresql://tessera@127.0.0.1:{postgres.port}/tessera"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        row = conn.execute("select current_database(), current_user").fetchone()
        assert row == ("tessera", "tessera")
        conn.execute("create table t_round_trip (id int primary key, name text)")
        conn.execute("insert into t_round_trip values (%s, %s)", (1, "页面 one"))
        row = conn.execute("select name from t_round_trip where id = 1").fetchone()
        assert row == ("页面 one",)
        conn.execute("drop table t_round_trip")


def test_postgres_stop_start_keeps_data(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("create table t_survivor (v text)")
        conn.execute("insert into t_survivor values ('kept')")
    try:
        postgres.stop()
        assert not postgres.running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(postgres.url, connect_timeout=2)
    finally:
        postgres.start()
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        assert conn.execute("select v from t_survivor").fetchall() == [("kept",)]
        conn.execute("drop table t_survivor")


def test_postgres_immediate_stop_keeps_every_committed_row(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        assert conn.execute("show synchronous_commit").fetchone() == ("on",)
        conn.execute("create table t_crash (v int)")
        conn.execute("insert into t_crash select generate_series(1, 500)")
    try:
        postgres.stop(hard=True)  # pg_ctl stop -m immediate: no checkpoint, recovery on start
        assert not postgres.running
    finally:
        postgres.start()
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        assert conn.execute("select count(*) from t_crash").fetchone() == (500,)
        conn.execute("drop table t_crash")
    assert "database system was interrupted" in postgres.log.read_text(errors="replace")


def test_tcp_gate_takes_a_server_away_and_back(s3: tuple[str, str], stack_env: dict[str, str]) -> None:
    endpoint, bucket = s3
    with TcpGate(int(endpoint.rsplit(":", 1)[1])) as gate:
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{gate.port}",
                              aws_access_key_id="testing", aws_secret_access_key="testing",
                              region_name="us-east-1")
        client.put_object(Bucket=bucket, Key="gate-test/object", Body=b"through the gate")
        held = socket.create_connection(("127.0.0.1", gate.port), timeout=2)
        held.sendall(b"HEAD / HTTP/1.1\r\nHost: s3\r\n\r\n")
        assert held.recv(65536).startswith(b"HTTP/1.1 ")  # through the gate and back
        gate.close()
        assert held.recv(1) == b""  # an open connection is ended, not left hanging
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", gate.port), timeout=2)
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            client.get_object(Bucket=bucket, Key="gate-test/object")
        held.close()
        gate.open()
        assert client.get_object(Bucket=bucket, Key="gate-test/object")["Body"].read() == b"through the gate"


def test_redis_set_get_and_config(redis_srv: RedisServer) -> None:
    client = redis.Redis.from_url(redis_srv.url, decode_responses=True)
    with client:
        assert client.set("greeting", "hello")
        assert client.get("greeting") == "hello"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("timeout") == {"timeout": "0"}


def test_redis_stop_start_keeps_aof_key(redis_srv: RedisServer) -> None:
    key = f"survivor-{uuid.uuid4()}"
    with redis.Redis.from_url(redis_srv.url, decode_responses=True) as client:
        client.set(key, "kept")
    try:
        redis_srv.stop()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(redis_srv.url, socket_connect_timeout=1).ping()
    finally:
        redis_srv.start()
    with redis.Redis.from_url(redis_srv.url, decode_responses=True) as client:
        assert client.get(key) == "kept"
        client.delete(key)


def test_s3_put_get(s3: tuple[str, str], stack_env: dict[str, str]) -> None:
    endpoint, bucket = s3
    assert stack_env["TESSERA_S3_ENDPOINT_URL"] == endpoint
    assert stack_env["TESSERA_S3_BUCKET"] == bucket == "tessera-test"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=stack_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack_env["AWS_SECRET_ACCESS_KEY"],
        region_name=stack_env["AWS_DEFAULT_REGION"],
    )
    body = b"%PDF-1.4 not really\x00\xff"
    client.put_object(Bucket=bucket, Key="services-test/a.pdf", Body=body)
    assert client.get_object(Bucket=bucket, Key="services-test/a.pdf")["Body"].read() == body
    listed = client.list_objects_v2(Bucket=bucket, Prefix="services-test/")["Contents"]
    assert [o["Key"] for o in listed] == ["services-test/a.pdf"]


def test_stack_env_points_at_servers(stack_env: dict[str, str], postgres: PostgresServer,
                                     redis_srv: RedisServer) -> None:
    assert stack_env["TESSERA_DATABASE_URL"] == postgres.url
    assert stack_env["TESSERA_BROKER_URL"] == redis_srv.url
    assert set(stack_env) >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
