"""The benchmark: dtool-s3 0.14.1, dtool-s3-core and plain boto3 side by side, in one run.

``python -m bench`` (or ``bash scripts/bench.sh``, which sets up both virtualenvs first) builds
synthetic datasets, starts a loopback S3 server, puts the project's counting proxy in front of
it with each chosen round-trip latency, runs every scenario with every tool as a separate
process, and writes the table to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from dtool_s3_core import create_dataset, override
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server, s3_server

from .chart import draw
from .data import MiB, local_dataset, make_files, tree_summary
from .harness import CommandFailed, Measurement, measure
from .report import Row, render
from .speed import SpeedOptions, keep_section, run_speed, section, table, write_section

logger = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parent.parent
JOBS = Path(__file__).resolve().parent / "jobs"
ORACLE, OURS, RAW = "dtool-s3 0.14.1", "dtool-s3-core", "boto3 (raw)"


@dataclass
class Options:
    items: int = 1000
    item_size: int = 4096
    large_count: int = 2
    large_size: int = 512 * MiB
    datasets: int = 200
    latencies_ms: list[float] = field(default_factory=lambda: [0.0, 10.0])
    load_items: int = 10_000
    huge_size: int = 2 * 1024 * MiB
    servers: list[str] = field(default_factory=lambda: ["moto", "seaweedfs"])
    output: Path | None = ROOT / "docs" / "benchmarks.md"
    work_dir: Path | None = None


@dataclass
class Bench:
    options: Options
    server: S3Server
    proxy: S3Proxy
    work: Path
    bins: dict[str, Path]
    rows: list[Row] = field(default_factory=list)
    buckets: set[str] = field(default_factory=set)

    def env(self, endpoint_url: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DTOOL_"))}
        cache = tempfile.mkdtemp(prefix="cache-", dir=self.work)
        env.update(
            HOME=str(self.work / "home"),
            DTOOL_CACHE_DIRECTORY=cache,
            AWS_ACCESS_KEY_ID=self.server.access_key,
            AWS_SECRET_ACCESS_KEY=self.server.secret_key,
            AWS_EC2_METADATA_DISABLED="true",
        )
        for bucket in self.buckets:
            env[f"DTOOL_S3_ENDPOINT_{bucket}"] = endpoint_url
            env[f"DTOOL_S3_ACCESS_KEY_ID_{bucket}"] = self.server.access_key
            env[f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"] = self.server.secret_key
        return env

    def bucket(self, name: str) -> str:
        self.server.create_bucket(name)
        self.buckets.add(name)
        return name

    def run(
        self, scenario: str, tool: str, argv: list[str], items: int, latency_ms: float | None
    ) -> Measurement:
        direct = latency_ms is None
        endpoint = self.server.endpoint_url if direct else self.proxy.url
        if not direct:
            self.proxy.latency = (latency_ms or 0.0) / 1000
        logger.info("%s | %s | %s ms", scenario, tool, "direct" if direct else latency_ms)
        slug = f"{len(self.rows):02d}-{tool.split(maxsplit=1)[0]}"
        result = measure(argv, self.env(endpoint), self.work / "logs" / slug, self.proxy)
        if direct:
            result = Measurement(**{**result.__dict__, "requests": None})
        self.rows.append(Row(self.server.name, scenario, latency_ms, tool, result, items))
        return result

    def dtool(self, tool: str, *args: str) -> list[str]:
        return [str(self.bins[tool] / "dtool"), *args]

    def raw(
        self, direction: str, bucket: str, local: Path, managed: bool, direct: bool
    ) -> list[str]:
        endpoint = self.server.endpoint_url if direct else self.proxy.url
        argv = [str(self.bins[OURS] / "python"), str(JOBS / "raw_transfer.py"), direction]
        argv += [endpoint, bucket, "raw", str(local)]
        return [*argv, "--managed"] if managed else argv


def transfer_scenarios(
    bench: Bench, label: str, source: Path, local_uri: str, items: int, latency_ms: float | None
) -> None:
    """Local -> S3 and S3 -> local with each tool, checking that every byte arrived."""
    expected = tree_summary(source)
    managed = latency_ms is None
    tag = "direct" if latency_ms is None else f"{int(latency_ms)}ms"
    for tool in (ORACLE, OURS, RAW):
        bucket = bench.bucket(f"{label}-{tool.split()[0].replace('-', '')}-{tag}".lower())
        down = bench.work / "down" / bucket
        if tool == RAW:
            up_argv = bench.raw("up", bucket, source, managed, latency_ms is None)
            down_argv = bench.raw("down", bucket, down, managed, latency_ms is None)
        else:
            up_argv = bench.dtool(tool, "cp", "-q", local_uri, f"s3://{bucket}")
        up = bench.run(f"{label}: local -> S3", tool, up_argv, items, latency_ms)
        if tool != RAW and not managed:
            # Both read each item's stored checksum: one listing plus a HEAD per item.
            verify_argv = bench.dtool(tool, "verify", "-f", up.output.strip())
            bench.run(f"{label}: dtool verify -f", tool, verify_argv, items, latency_ms)
        if tool != RAW:
            down.mkdir(parents=True)
            down_argv = bench.dtool(tool, "cp", "-q", up.output.strip(), down.as_uri())
        bench.run(f"{label}: S3 -> local", tool, down_argv, items, latency_ms)
        got = tree_summary(down)
        if tool != RAW:
            # The dataset's own files (manifest, README, admin metadata) sit beside the items.
            got = tree_summary(next(down.iterdir()) / "data")
        if got != expected:
            raise CommandFailed(f"{tool} copied {got} (files, bytes), expected {expected}")
        shutil.rmtree(down)


def freeze_scenarios(bench: Bench, source: Path, items: int, latency_ms: float) -> None:
    for tool in (ORACLE, OURS):
        bucket = bench.bucket(f"freeze-{tool.split()[0].replace('-', '')}-{int(latency_ms)}ms")
        argv = [str(bench.bins[tool] / "python"), str(JOBS / "freeze_job.py")]
        argv += [f"s3://{bucket}", str(source)]
        result = bench.run("small: create + add + freeze in S3", tool, argv, items, latency_ms)
        phases = json.loads(result.output)
        bench.rows[-1].note = f"freeze alone {phases['freeze_s']:.2f} s"


def populate(bench: Bench, count: int) -> str:
    """A bucket with ``count`` small frozen datasets, written straight to the server."""
    bucket = bench.bucket("listing")
    item = bench.work / "ls-item.txt"
    item.write_text("x\n")
    server = bench.server
    settings = {
        "endpoint_url": server.endpoint_url,
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
    }

    def one(index: int) -> str:
        with override(bucket, **settings):
            return create_dataset(f"ds-{index:04d}", f"s3://{bucket}", files={"x.txt": item})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(count)))
    return bucket


def run(options: Options) -> list[Row]:
    with ExitStack() as stack:
        work = options.work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (work / "home").mkdir(parents=True, exist_ok=True)
        bins = {ORACLE: ROOT / ".venv-oracle" / "bin", OURS: Path(sys.executable).parent}
        if not (bins[ORACLE] / "dtool").exists():
            raise CommandFailed("no dtool-s3 0.14.1 virtualenv: run scripts/bootstrap.sh first")
        logger.info(
            "making %d x %d B and %d x %d MiB of random data",
            options.items,
            options.item_size,
            options.large_count,
            options.large_size // MiB,
        )
        small = make_files(work / "small", options.items, options.item_size)
        large = make_files(work / "large", options.large_count, options.large_size, fanout=1)
        small_uri = local_dataset(small, work / "local", "small")
        large_uri = local_dataset(large, work / "local", "large")
        rows: list[Row] = []
        for number, kind in enumerate(options.servers):
            with s3_server(kind) as server, S3Proxy(server.endpoint_url) as proxy:
                bench = Bench(options, server, proxy, work, bins, rows)
                ls_bucket = populate(bench, options.datasets)
                for latency in options.latencies_ms:
                    transfer_scenarios(bench, "small", small, small_uri, options.items, latency)
                    freeze_scenarios(bench, small, options.items, latency)
                    for tool in (ORACLE, OURS):
                        argv = bench.dtool(tool, "ls", f"s3://{ls_bucket}")
                        bench.run("bucket: dtool ls", tool, argv, options.datasets, latency)
                if number == 0:
                    transfer_scenarios(bench, "large", large, large_uri, options.large_count, None)
                    load_scenarios(bench, work)
        return rows


def load_scenarios(bench: Bench, work: Path) -> None:
    """dtool-s3-core alone at scale: every CLI step on many items, and one huge item."""
    options = bench.options
    many = make_files(work / "many", options.load_items, 256, fanout=50)
    huge = work / "huge"
    huge.mkdir()
    with (huge / "huge.bin").open("wb") as out:
        # Sparse apart from both ends: the disk stays free, the transfer is full size.
        out.write(os.urandom(MiB))
        out.seek(options.huge_size - MiB)
        out.write(os.urandom(MiB))
    for label, name, source, count in (
        (f"load: {options.load_items} items", "load-many", many, options.load_items),
        (f"load: one {options.huge_size / (1024 * MiB):g} GiB item", "load-huge", huge, 1),
    ):
        local_uri = local_dataset(source, work / "local", name)
        bucket = bench.bucket(f"load-{count}")
        up = bench.run(
            f"{label}: local -> S3",
            OURS,
            bench.dtool(OURS, "cp", "-q", local_uri, f"s3://{bucket}"),
            count,
            None,
        )
        uri = up.output.strip()
        if count > 1:
            bench.run(
                f"{label}: dtool ls", OURS, bench.dtool(OURS, "ls", f"s3://{bucket}"), 1, None
            )
            bench.run(
                f"{label}: dtool verify -f",
                OURS,
                bench.dtool(OURS, "verify", "-f", uri),
                count,
                None,
            )
        down = work / "down" / bucket
        down.mkdir(parents=True)
        bench.run(
            f"{label}: S3 -> local",
            OURS,
            bench.dtool(OURS, "cp", "-q", uri, down.as_uri()),
            count,
            None,
        )
        got = tree_summary(next(down.iterdir()) / "data")
        if got != tree_summary(source):
            raise CommandFailed(f"{label}: copied {got} (files, bytes) of {tree_summary(source)}")
        shutil.rmtree(down)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--items", type=int, default=1000, help="small items (4 KiB each)")
    parser.add_argument("--large-count", type=int, default=2)
    parser.add_argument(
        "--large-mib", type=int, help="size of each large item (default 512; speed suite 256)"
    )
    parser.add_argument("--datasets", type=int, default=200, help="datasets to list")
    parser.add_argument("--load-items", type=int, default=10_000, help="items of the load run")
    parser.add_argument("--huge-gib", type=float, default=2.0, help="the one huge item, GiB")
    parser.add_argument("--latencies", default="0,10", help="round trips to add, ms")
    parser.add_argument("--servers", default="moto,seaweedfs", help="loopback servers, in order")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-output", action="store_true", help="print only, write no docs")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--work-dir", type=Path, help="keep inputs and logs here")
    parser.add_argument(
        "--suite",
        choices=["default", "speed"],
        default="default",
        help="speed: against s5cmd, rclone and raw awscrt on SeaweedFS (its own docs section)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="speed suite: interleaved rounds")
    return parser.parse_args(argv)


def options_of(args: argparse.Namespace) -> Options:
    options = Options(
        items=args.items,
        large_count=args.large_count,
        large_size=(args.large_mib or 512) * MiB,
        datasets=args.datasets,
        load_items=args.load_items,
        huge_size=int(args.huge_gib * 1024) * MiB,
        latencies_ms=[float(x) for x in args.latencies.split(",") if x],
        servers=[s for s in args.servers.split(",") if s],
        output=None if args.no_output else args.output,
        work_dir=args.work_dir,
    )
    if args.quick:
        options.items, options.large_count, options.large_size, options.datasets = 20, 1, MiB, 5
        options.load_items, options.huge_size = 50, 8 * MiB
    return options


def speed_options_of(args: argparse.Namespace) -> SpeedOptions:
    options = SpeedOptions(
        items=args.items,
        large_count=args.large_count,
        large_size=(args.large_mib or 256) * MiB,
        latencies_ms=[float(x) for x in args.latencies.split(",") if x],
        rounds=args.rounds,
        output=None if args.no_output else args.output,
        work_dir=args.work_dir,
    )
    if args.quick:
        options.items, options.large_count, options.large_size, options.rounds = 20, 1, 8 * MiB, 1
    return options


def main_speed(options: SpeedOptions) -> int:
    try:
        speed = run_speed(options, Path(sys.executable).parent)
    except CommandFailed as err:
        logger.error("benchmark failed: %s", err)
        return 1
    body = table(speed)
    sys.stdout.write(body + "\n")
    if options.output is not None:
        write_section(options.output, section(speed, body))
        chart = options.output.with_name("benchmarks-speed.png")
        draw(options.output, chart)
        logger.info("wrote the speed section of %s and %s", options.output, chart)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = parse_args(argv)
    if args.suite == "speed":
        return main_speed(speed_options_of(args))
    options = options_of(args)
    try:
        rows = run(options)
    except CommandFailed as err:
        logger.error("benchmark failed: %s", err)
        return 1
    table = render(rows, options)
    sys.stdout.write(table.text + "\n")
    if options.output is not None:
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(keep_section(options.output, table.document))
        logger.info("wrote %s", options.output)
    return 0
