"""The test harness's own servers really work: real PostgreSQL, Redis and S3 over the network."""

from __future__ import annotations

import uuid

import boto3
import psycopg
import pytest
import redis

from tests.utils.services import PostgresServer, RedisServer, free_port, wait_for_port


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
