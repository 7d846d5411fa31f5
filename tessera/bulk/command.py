"""`tessera submit` from its arguments to an exit code: check them, open (or resume) the output
folder's manifest, record the inputs, run (tessera/bulk/run.py), summarise.

Exit codes: 0 every document succeeded and its results are written (without --watch: every
document was accepted); 1 some failed, partially succeeded, were not accepted or are still
processing (the summary says which and why); 2 the command line is wrong; 130 interrupted.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from tessera.bulk.inputs import is_s3, local_inputs, local_root, s3_inputs
from tessera.bulk.manifest import Manifest
from tessera.bulk.run import BulkRun, RunOptions
from tessera.bulk.summary import EXIT_INTERRUPTED
from tessera.client import TesseraClient

EXIT_USAGE = 2


class UsageError(ValueError):
    """The arguments cannot work (printed, exit code 2)."""


def submit_command(arguments: list[str], *, server: str, api_key: str, options: RunOptions,
                   retry_failed: bool, console: Console | None = None) -> int:
    console = console or Console(soft_wrap=True)  # log lines stay whole in files
    try:
        manifest = Manifest(options.out)
    except OSError as exc:
        console.print(f"cannot use {options.out} as the output folder: {exc}")
        return EXIT_USAGE
    client = TesseraClient(server, api_key)
    try:
        try:
            count = _record_inputs(manifest, arguments, server, options, console)
        except (UsageError, ValueError, OSError) as exc:
            console.print(f"tessera submit: {exc}", highlight=False)
            return EXIT_USAGE
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        retried = manifest.retry_failed() if retry_failed else 0
        console.print(f"{count} documents ({retried} failed ones sent again); output folder "
                      f"{options.out.resolve()}", highlight=False)
        run = BulkRun(client, manifest, options, console)
        code = run.run()
        run.summary()
        return code
    finally:
        client.close()
        manifest.close()


def _record_inputs(manifest: Manifest, arguments: list[str], server: str, options: RunOptions,
                   console: Console) -> int:
    s3 = [argument for argument in arguments if is_s3(argument)]
    if s3 and len(s3) != len(arguments) or len(s3) > 1:
        raise UsageError("give either files and folders, or one s3://bucket/prefix")
    recorded = manifest.meta("server")
    if recorded not in (None, server.rstrip("/")):  # the same server under another name, maybe
        console.print(f"note: {options.out} was made with the server {recorded}; its job ids are "
                      f"looked up on {server} now", highlight=False)
    manifest.set_meta("server", server.rstrip("/"))
    manifest.check_meta("options", json.dumps(options.job_options, sort_keys=True), "the options")
    if s3:
        manifest.check_meta("root", s3[0], "the inputs under")
        count = manifest.record_inputs(s3_inputs(s3[0]))
    else:
        paths = [Path(argument) for argument in arguments]
        missing = [str(path) for path in paths if not path.exists()]
        if missing:
            raise UsageError(f"no such file or folder: {', '.join(missing[:3])}")
        root = Path(manifest.meta("root") or str(local_root(paths)))
        manifest.check_meta("root", str(root), "the inputs under")
        count = manifest.record_inputs(local_inputs(paths, root, skip=options.out.resolve()))
    if count == 0:
        raise UsageError("no documents found (PDF, PNG, JPEG or TIFF files)")
    return count
