"""Running one measured command: wall time, CPU time, peak memory and S3 requests."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.proxy import S3Proxy


@dataclass(frozen=True)
class Measurement:
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    requests: int | None
    output: str


class CommandFailed(RuntimeError):
    """A benchmarked command exited non-zero."""


def measure(
    argv: list[str], env: dict[str, str], log_dir: Path, proxy: S3Proxy | None = None
) -> Measurement:
    """Run ``argv`` to completion and measure it (the child alone, via wait4).

    :raises CommandFailed: with the tail of its stderr when the command fails
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / "stdout", log_dir / "stderr"
    if proxy is not None:
        proxy.stats.reset()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    requests = proxy.stats.snapshot()["total"] if proxy is not None else None
    if proc.returncode != 0:
        tail = err_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise CommandFailed(f"{' '.join(argv[:3])} exited {proc.returncode}: {' | '.join(tail)}")
    return Measurement(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        # Linux reports ru_maxrss in KiB.
        peak_rss_mib=usage.ru_maxrss / 1024,
        requests=requests,
        output=out_path.read_text(errors="replace"),
    )
