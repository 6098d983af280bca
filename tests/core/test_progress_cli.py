"""The progress bar of ``dtool s3 cp`` on a pseudo terminal (issue 20); ``verify --deep`` draws
the same bar (see test_s3_cli's large item).

A real ``dtool`` copies small items through a proxy that delays every request, so the bar is
redrawn many times; the test replays what it wrote on a screen of the terminal's width and
looks at what a user would see: no row past the right margin, the totals in the last frame,
and at the end only the summary and the URI (or the one line of an error or an interruption).
The server does not matter: moto only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Dtool, bucket_env, local_dataset
from tests.support.proxy import S3Proxy
from tests.support.servers import S3Server
from tests.support.terminal import Screen, TerminalRun, run_on_terminal

ITEMS = {f"item-{n:02d}.txt": bytes([65 + n % 26]) * 1500 for n in range(40)}
#: The last frame: bar (where there is room), percentage, bytes, items, rate and ETA.
LAST = re.compile(r"[━╸╺ ]*100% +60\.0/60\.0 kB +40/40 items +(\S+ \S+/s|\?) +ETA \d+:\d\d:\d\d")
#: Every remnant a bar could leave: its frames all hold the items count and an ETA.
BAR = re.compile(r"\d+/40 items|ETA")


@pytest.fixture
def s3(moto: S3Server) -> S3Server:
    """The server does not matter here: moto, for ``bucket`` and ``dtool`` as well."""
    return moto


@pytest.fixture
def slow(dtool: Dtool, s3: S3Server, tmp_path: Path) -> Iterator[tuple[Dtool, S3Proxy, str]]:
    """``dtool``, a bucket it reaches through a delaying proxy, two requests at a time."""
    dest = f"bar-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(dest)
    with S3Proxy(s3.endpoint_url, latency=0.05) as proxy:
        dtool.env.update(bucket_env(s3, dest))
        dtool.env[f"DTOOL_S3_ENDPOINT_{dest}"] = proxy.url
        dtool.env["DTOOL_S3_MAX_CONCURRENCY"] = "2"
        yield dtool, proxy, dest


def on_terminal(dtool: Dtool, columns: int, *args: str, **options: Any) -> TerminalRun:
    """Run ``dtool args`` on a pseudo terminal ``columns`` wide (see :func:`run_on_terminal`)."""
    env = dtool.environment()
    return run_on_terminal([str(dtool.bin_dir / "dtool"), *args], env, columns, **options)


def screen_of(run: TerminalRun, columns: int) -> Screen:
    screen = Screen(columns)
    screen.feed(run.output)
    return screen


def on_screen(dtool: Dtool, *args: str) -> Screen:
    """The 80-column screen ``dtool args`` leaves, run with all of stdio on a terminal."""
    run = on_terminal(dtool, 80, *args)
    assert run.returncode == 0, run.output
    return screen_of(run, 80)


@pytest.mark.parametrize("columns", [60, 80])
def test_the_bar_fits_the_terminal_and_leaves_only_the_summary(
    slow: tuple[Dtool, S3Proxy, str], tmp_path: Path, columns: int
) -> None:
    dtool, _, dest = slow
    local = local_dataset(tmp_path / "local", "many", ITEMS)
    run = on_terminal(dtool, columns, "s3", "cp", str(local), f"s3://{dest}")
    screen = screen_of(run, columns)
    assert run.returncode == 0, run.output
    assert screen.overflows == []
    frames = [frame for frame in screen.erased if BAR.search(frame)]
    assert frames, screen.erased
    assert all(len(frame) <= columns for frame in frames)
    # Every number in the last frame: the rate ("?" until rich has two samples), the ETA.
    assert LAST.fullmatch(frames[-1]), frames[-1]
    if columns >= 80:
        assert frames[-1].startswith("━")  # room for a bar beside the numbers
    summary, uri = screen.text()
    assert summary.startswith("transferred 40 of 40 items, 60.0 kB in ")
    assert uri.startswith(f"s3://{dest}/")


def test_no_bar_when_stderr_is_not_a_terminal(
    slow: tuple[Dtool, S3Proxy, str], tmp_path: Path
) -> None:
    dtool, _, dest = slow
    local = local_dataset(tmp_path / "local", "many", ITEMS)
    run = on_terminal(dtool, 80, "s3", "cp", str(local), f"s3://{dest}", stderr_on_terminal=False)
    screen = screen_of(run, 80)
    assert run.returncode == 0, run.output
    assert run.stderr == ""
    assert screen.erased == []
    summary, uri = screen.text()
    assert summary.startswith("transferred 40 of 40 items, 60.0 kB in ")
    assert uri.startswith(f"s3://{dest}/")


@pytest.mark.parametrize("ending", ["interrupt", "error"])
def test_the_bar_is_erased_when_a_copy_stops(
    slow: tuple[Dtool, S3Proxy, str], tmp_path: Path, ending: str
) -> None:
    dtool, proxy, dest = slow
    dtool.env["DTOOL_S3_MAX_ATTEMPTS"] = "1"
    proxy.fault_kinds = ("500",)
    proxy.fault_operations = ("PutObject",)
    local = local_dataset(tmp_path / "local", "many", ITEMS)

    def stop(output: str, process: subprocess.Popen[bytes]) -> bool:
        if not BAR.search(output):
            return False
        if ending == "interrupt":
            process.send_signal(signal.SIGINT)
        else:
            proxy.fault_rate = 1.0
        return True

    run = on_terminal(dtool, 80, "s3", "cp", str(local), f"s3://{dest}", watch=stop)
    screen = screen_of(run, 80)
    shown = " ".join(screen.text())  # the message may wrap: it names two URIs
    assert any(BAR.search(frame) for frame in screen.erased), run.output
    assert not BAR.search(shown), shown
    if ending == "interrupt":
        assert run.returncode == 130, run.output
        assert shown.startswith("Interrupted: ") and "dtool s3 cp --resume" in shown, shown
    else:
        assert run.returncode == 1, run.output
        assert shown.startswith("Error: ") and "Traceback" not in shown, shown


def test_log_lines_print_above_the_bar(slow: tuple[Dtool, S3Proxy, str], tmp_path: Path) -> None:
    """``dtool --debug`` logs every request to the stderr it found at start: no frame of the
    bar may be left in front of a log line."""
    dtool, _, dest = slow
    local = local_dataset(tmp_path / "local", "many", dict(list(ITEMS.items())[:4]))
    run = on_terminal(dtool, 80, "--debug", "s3", "cp", str(local), f"s3://{dest}")
    screen = screen_of(run, 80)
    assert run.returncode == 0, run.output[-5000:]
    assert any(re.search(r"\d+/4 items", frame) for frame in screen.erased)
    shown = screen.text()
    assert len(shown) > 10 and " - DEBUG - " in shown[0], shown[:3]
    assert [row for row in shown if re.search(r"\d+/4 items|ETA", row)] == []
    assert shown[-2].startswith("transferred 4 of 4 items")


def test_without_rich_a_copy_on_a_terminal_draws_no_bar(
    slow: tuple[Dtool, S3Proxy, str], tmp_path: Path
) -> None:
    """rich comes with the ``cli`` extra; dtool-cli installed on its own still copies."""
    dtool, _, dest = slow
    (tmp_path / "norich" / "rich").mkdir(parents=True)
    (tmp_path / "norich" / "rich" / "__init__.py").write_text("raise ImportError('no rich')\n")
    dtool.env["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path / "norich"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    local = local_dataset(tmp_path / "local", "many", ITEMS)
    run = on_terminal(dtool, 80, "s3", "cp", str(local), f"s3://{dest}")
    screen = screen_of(run, 80)
    assert run.returncode == 0, run.output
    assert screen.erased == []
    summary, uri = screen.text()
    assert summary.startswith("transferred 40 of 40 items, 60.0 kB in ")
    assert uri.startswith(f"s3://{dest}/")
