"""What a `tessera submit` run reports from its manifest: the progress snapshot, the exit code
and the closing summary (a table of documents for small runs, failures by code with examples,
where results are, requests made)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tessera.bulk import manifest as states
from tessera.bulk.formats import output_path
from tessera.formats import RESULT_FORMATS, ResultFormat
from tessera.bulk.manifest import Manifest
from tessera.bulk.progress import Snapshot, failures_text

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
TABLE_UP_TO = 25  # documents: a run this small ends with a table of them


def snapshot(manifest: Manifest, requests: int) -> Snapshot:
    totals = manifest.totals()
    pages_known, pages_done, counted, uncounted = manifest.pages()
    failures = Counter(code for code, _, _ in manifest.failures())
    return Snapshot(documents=sum(totals.get(s, 0) for s in states.STATES),
                    finished=totals.get(states.DONE, 0) + totals.get(states.FAILED, 0),
                    failed=totals.get(states.FAILED, 0), pages_known=pages_known,
                    pages_done=pages_done, counted_documents=counted, uncounted_documents=uncounted,
                    failures=dict(failures), requests=requests)


def exit_code(manifest: Manifest, watch: bool) -> int:
    """0 when every document succeeded and its results are written (without watch: every one
    was accepted), else 1."""
    totals = manifest.totals()
    if not watch:
        return EXIT_OK if totals.get(states.FAILED, 0) + totals.get(states.PENDING, 0) == 0 else EXIT_FAILED
    everything = sum(totals.get(s, 0) for s in states.STATES)
    return EXIT_OK if totals.get("job:succeeded", 0) == everything == totals.get(states.DONE, 0) \
        else EXIT_FAILED


def print_summary(console: Console, manifest: Manifest, out: Path, formats: list[ResultFormat],
                  requests: Counter[str], seconds: float) -> None:
    totals = manifest.totals()
    count = sum(totals.get(s, 0) for s in states.STATES)
    if count <= TABLE_UP_TO:
        console.print(document_table(manifest, out))
    console.print(
        f"{count} documents in {seconds:.1f} s: {totals.get('job:succeeded', 0)} succeeded, "
        f"{totals.get('job:partially_succeeded', 0)} partially succeeded, "
        f"{totals.get(states.FAILED, 0)} failed, {totals.get(states.SUBMITTED, 0)} still processing, "
        f"{totals.get(states.PENDING, 0)} not submitted", highlight=False)
    for line in failure_lines(manifest):
        console.print(line, highlight=False)
    console.print(f"results: {out.resolve()}/<path>{{{','.join(f.suffix for f in formats)}}}; "
                  f"manifest: {manifest.path.resolve()}", highlight=False)
    console.print(f"requests: {requests['uploads']} uploads, {requests['polls']} polls, "
                  f"{requests['downloads']} downloads, {requests['waits']} waits "
                  "(429/503 Retry-After)", highlight=False)


def document_table(manifest: Manifest, out: Path) -> Table:
    """One row per document: status, pages, the text's first lines."""
    table = Table(title="Tessera results")
    for column in ("document", "status", "pages", "first lines"):
        table.add_column(column)
    for document in manifest.first(TABLE_UP_TO):
        status = document.job_status or document.state
        if document.error_code:
            status = f"{status} ({document.error_code})"
        table.add_row(document.key, status, f"{document.pages_done or 0}/{document.pages_total or 0}",
                      first_lines(output_path(out, document.key, RESULT_FORMATS["json"])))
    return table


def failure_lines(manifest: Manifest) -> list[str]:
    """Per error code: how many, three examples, the first message; then the counts."""
    by_code: dict[str, list[tuple[str, str]]] = {}
    for code, key, message in manifest.failures():
        by_code.setdefault(code, []).append((key, message))
    lines = []
    for code, items in by_code.items():
        examples = ", ".join(key for key, _ in items[:3]) + (" ..." if len(items) > 3 else "")
        lines.append(f"  {code} ({len(items)}): {examples}: {items[0][1][:200]}")
    if by_code:
        lines.append(f"  by code: {failures_text({c: len(i) for c, i in by_code.items()})}; "
                     "--retry-failed sends the failed ones again")
    return lines


def first_lines(result: Path, count: int = 2) -> str:
    """The first lines of text of a document's JSON result, if it was written."""
    try:
        document = json.loads(result.read_bytes())
    except (OSError, ValueError):
        return ""
    text = next((page.get("text", "") for page in document.get("pages", []) if page.get("text")), "")
    lines = [line.strip() for line in text.splitlines() if line.strip()][:count]
    return " / ".join(line[:60] for line in lines)
