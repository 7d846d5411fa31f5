"""The `tessera` command: one entry point for the server, workers, tools and clients.

Only this module (and app start-up) reads the environment; everything below
it receives a Settings object.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from tessera.config import Settings, get_settings
from tessera.formats import DEFAULT_FORMATS, RESULT_FORMATS, parse_formats

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Tessera: documents in, text and chart tables out.")
api_key_app = typer.Typer(no_args_is_help=True, help="Manage API keys.")
app.add_typer(api_key_app, name="api-key")


@app.callback()
def _main() -> None:
    from tessera.logs import configure_logging

    configure_logging()


def _migrate_if_embedded(settings: Settings) -> None:
    from storage.migrate import upgrade

    settings.home.mkdir(parents=True, exist_ok=True)
    if settings.database_url is None:
        upgrade(settings.sqlalchemy_url)


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="API only; run workers separately")] = False,
) -> None:
    """Start the API, plus an in-process worker unless --no-worker (embedded defaults unless configured)."""
    import uvicorn

    from api.main import create_app
    from tessera.supervisor import WorkerSupervisor
    from workers.recovery import Sweeper, recover

    settings = get_settings()
    _migrate_if_embedded(settings)
    supervisor = None if no_worker else WorkerSupervisor()
    application = create_app(settings, supervisor)
    runtime, enqueuer = application.state.runtime, application.state.enqueuer
    if supervisor is not None:
        # Embedded: nothing else can be running this work, so take back every unfinished task.
        recover(runtime, enqueuer, all_running=settings.embedded)
        supervisor.start()
    sweeper = Sweeper(runtime, enqueuer).start()
    # uvicorn re-raises SIGTERM once it has shut down; turn it into SystemExit so the
    # `finally` below still stops the worker.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        uvicorn.run(application, host=host, port=port, log_level="warning")
    finally:
        sweeper.stop()
        if supervisor is not None:
            supervisor.stop()


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="comma-separated: cpu, gpu, webhooks")] = "cpu,gpu,webhooks",
    concurrency: Annotated[int, typer.Option(min=1)] = 1,
    pool: Annotated[str, typer.Option(help="prefork, solo or threads")] = "prefork",
) -> None:
    """Run a Celery worker on the given queues."""
    from workers.celery_app import configure

    settings = get_settings()
    _migrate_if_embedded(settings)
    celery = configure(settings, queues.split(","))
    argv = ["worker", "--queues", queues, "--concurrency", str(concurrency), "--pool", pool,
            "--loglevel", "INFO", "--hostname", f"tessera-{os.getpid()}@%h", "--prefetch-multiplier", "1"]
    if settings.embedded:
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    celery.worker_main(argv)


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    from storage.migrate import upgrade

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)
    typer.echo("database is up to date")


@app.command()
def sweep(
    interval: Annotated[float | None, typer.Option(help="repeat every N seconds (default: once)")] = None,
) -> None:
    """Re-send work whose lease expired or whose message was lost, deliver due webhooks, purge
    jobs past TESSERA_RETENTION_DAYS (all of this also runs inside `serve`)."""
    import time

    from workers.celery_app import configure
    from workers.enqueue import CeleryEnqueuer
    from workers.recovery import Sweeper
    from workers.runtime import Runtime

    settings = get_settings()
    sweeper = Sweeper(Runtime(settings), CeleryEnqueuer(configure(settings)))
    while True:
        report = sweeper.pass_once()
        counts = report["recovered"]
        resent = (f"re-sent {counts.splits} splits, {counts.pages} pages, {counts.assemblies} "
                  f"assemblies; {counts.dead} pages dead" if not isinstance(counts, Exception)
                  else f"recovery failed: {counts!r}")
        typer.echo(f"{resent}; {report['webhooks_delivered']} webhooks delivered; "
                   f"{report['jobs_purged']} jobs purged")
        if interval is None:
            failed = any(isinstance(value, Exception) for value in report.values())
            raise typer.Exit(1 if failed else 0)
        time.sleep(interval)


@api_key_app.command("create")
def api_key_create(tenant: Annotated[str, typer.Option(help="tenant name (created if new)")]) -> None:
    """Create an API key; the key is printed alone on the last line."""
    from storage.db import make_engine, make_session_factory
    from storage.tenants import create_api_key

    settings = get_settings()
    _migrate_if_embedded(settings)
    with make_session_factory(make_engine(settings.sqlalchemy_url)).begin() as session:
        key = create_api_key(session, tenant)
    typer.echo(f"API key for tenant {tenant!r} (shown once):", err=True)
    typer.echo(key)


@app.command()
def submit(
    paths: Annotated[list[str], typer.Argument(help="files and folders, or one s3://bucket/prefix")],
    server: Annotated[str | None, typer.Option(help="default: TESSERA_SERVER")] = None,
    api_key: Annotated[str | None, typer.Option(help="default: TESSERA_API_KEY")] = None,
    out: Annotated[Path, typer.Option(help="results and the manifest go here")] = Path("tessera-results"),
    format: Annotated[str, typer.Option("--format", help=(  # noqa: A002
        f"result files to write, comma-separated: {', '.join(RESULT_FORMATS)}"))] = DEFAULT_FORMATS,
    options: Annotated[str | None, typer.Option(help="job options as JSON")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="uploads at a time")] = 4,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="send failed ones again")] = False,
    watch: Annotated[bool, typer.Option("--watch/--no-watch",
                                        help="wait for results (default) or only submit")] = True,
    timeout: Annotated[float | None, typer.Option(help="give up waiting after N seconds")] = None,
    poll_interval: Annotated[float, typer.Option(min=0.1, help="seconds between polls")] = 2.0,
    progress: Annotated[str, typer.Option(help="auto, rich or plain")] = "auto",
) -> None:
    """Submit documents and write their results under --out, mirroring the input tree; run the
    same command again to resume (see README: bulk submission)."""
    import json

    from pydantic import ValidationError

    from api.schemas import JobOptions
    from tessera.bulk.command import EXIT_USAGE, submit_command
    from tessera.bulk.run import RunOptions

    settings = get_settings()
    key = api_key or settings.api_key
    if not key:
        raise typer.BadParameter("no API key: pass --api-key or set TESSERA_API_KEY")
    try:
        formats = parse_formats(format)
        parsed = JobOptions.model_validate(json.loads(options)) if options else JobOptions()
    except (ValueError, ValidationError) as exc:  # JSONDecodeError and ValidationError included
        typer.echo(f"tessera submit: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    job_options = parsed.model_dump(exclude_none=True, exclude_defaults=True)
    if progress not in ("auto", "rich", "plain"):
        raise typer.BadParameter("--progress is auto, rich or plain")
    run_options = RunOptions(out=out, formats=formats, job_options=job_options,
                             concurrency=concurrency, watch=watch, timeout=timeout,
                             poll_interval=poll_interval, progress=progress)
    raise typer.Exit(submit_command(paths, server=server or settings.server, api_key=key,
                                    options=run_options, retry_failed=retry_failed))


@app.command()
def run(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="files or folders")],
    out: Annotated[Path, typer.Option(help="where results go")],
    options: Annotated[str | None, typer.Option(help="job options as JSON")] = None,
    formats: Annotated[str, typer.Option("--format", help=(
        f"result files to write, comma-separated: {', '.join(RESULT_FORMATS)}"))] = DEFAULT_FORMATS,
) -> None:
    """One-shot local processing, no server: every stage runs in this process."""
    from tessera.local_run import run_locally

    try:
        wanted = parse_formats(formats)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--format") from exc
    failed = run_locally(get_settings(), paths, out, options, wanted)
    raise typer.Exit(1 if failed else 0)


def _register_model_commands() -> None:
    """InternVL tooling (tiles planner, checkpoint converter and checker) lives with the model code."""
    try:
        from tessera.cli_model import model_app, tiles
    except ImportError as exc:  # pragma: no cover (a broken install should still serve)
        print(f"warning: model commands unavailable: {exc}", file=sys.stderr)
        return
    app.command("tiles")(tiles)
    app.add_typer(model_app, name="model")


_register_model_commands()

if __name__ == "__main__":
    app()
