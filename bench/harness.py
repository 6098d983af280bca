"""Running one measured command: wall time, CPU time, peak memory and S3 requests."""

from __future__ import annotations

import dataclasses
import os
import shutil
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


#: GNU time: a small parent whose child reports its own peak RSS (see :func:`measure`).
TIME = shutil.which("time", path="/usr/bin:/bin")


class CommandFailed(RuntimeError):
    """A benchmarked command exited non-zero."""


def measure(
    argv: list[str], env: dict[str, str], log_dir: Path, proxy: S3Proxy | None = None
) -> Measurement:
    """Run ``argv`` to completion and measure it (the child alone, via wait4).

    A child forked from this process reports at least this process's peak RSS (Linux keeps the
    pre-exec peak), so where GNU time exists it runs the command and reports the peak instead.

    :raises CommandFailed: with the tail of its stderr when the command fails
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    rss_file = log_dir / "peak-rss-kib"
    command = [TIME, "-f", "%M", "-o", str(rss_file), *argv] if TIME else argv
    out_path, err_path = log_dir / "stdout", log_dir / "stderr"
    if proxy is not None:
        proxy.stats.reset()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    requests = proxy.stats.snapshot()["total"] if proxy is not None else None
    if proc.returncode != 0:
        tail = err_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise CommandFailed(f"{' '.join(argv[:3])} exited {proc.returncode}: {' | '.join(tail)}")
    result = Measurement(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        # Linux reports ru_maxrss in KiB.
        peak_rss_mib=usage.ru_maxrss / 1024,
        requests=requests,
        output=out_path.read_text(errors="replace"),
    )
    if TIME:
        peak_kib = int(rss_file.read_text().split()[-1])
        result = dataclasses.replace(result, peak_rss_mib=peak_kib / 1024)
    return result
