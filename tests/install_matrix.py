"""The README's install lines in fresh virtualenvs, as a new user runs them (issue 20).

Run from the checkout by ``scripts/install-matrix.sh`` (part of ``scripts/test.sh``, beside
pytest) with the wheel it built. For Python 3.11 (required), 3.12 and 3.13: ``python -m venv``,
then ``pip install "<wheel>[cli]"`` with the venv's own pip and no constraints; every ``dtool``
command's ``--help`` and one round trip through a loopback moto server must exit 0 with nothing
on stderr. ``[snakemake]`` and ``[airflow]`` on 3.11 and 3.13, each in a venv of its own: the
storage plugin and the provider are found, without warnings. On 3.11, dtool-s3 0.14.1 is then
installed beside: the doctor says which broker serves s3://, a round trip works, and the
README's fix makes it this package's. Every install's duration is printed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.support.servers import S3Server, moto_server

logger = logging.getLogger("tests.install_matrix")
REQUIRED = "3.11"
OPTIONAL = ("3.12", "3.13")
#: The Pythons that also install the [snakemake] and [airflow] extras: the lowest and the highest.
EXTRA_PYTHONS = ("3.11", "3.13")
#: dtool-http 0.5.2 registers its two argparse scripts as dtool commands; dtool-cli lists them
#: as plugins that could not load, with every version of dtool-http so far. Not ours to fix.
DTOOL_HTTP_SCRIPTS = frozenset({"dtool_publish_dataset", "dtool_serve_directory"})
#: The README's command (Install: dtool-s3 beside) that removes dtool-s3's s3:// registration.
DROP_REGISTRATION = (
    "import importlib.metadata as m; "
    "[f.locate().unlink() for f in m.files('dtool-s3') if f.name == 'entry_points.txt']"
)
#: Backtracking without constraints takes minutes ([airflow]); a hang must not use up CI's time.
PIP_TIMEOUT = 1200
_COMMAND = re.compile(r"^  (\S+)")
_PIP_NOISE = "WARNING: Location"


class Failed(Exception):
    """A step of the matrix failed; the message says which and shows what it printed."""


def main(argv: Sequence[str]) -> int:
    (wheel_arg, work_arg) = argv
    wheel, work = Path(wheel_arg).resolve(), Path(work_arg).resolve()
    started = time.monotonic()
    pythons = {version: find_python(version) for version in (REQUIRED, *OPTIONAL)}
    failures: list[str] = []
    if pythons[REQUIRED] is None:
        failures.append(f"python{REQUIRED} not found: it is required")
    for version in OPTIONAL:
        if pythons[version] is None:
            logger.info(f"skipped: python{version} not found")
    with moto_server() as server:
        for version, python in pythons.items():
            if python is None:
                continue
            for extra in ("cli", "snakemake", "airflow"):
                if extra != "cli" and version not in EXTRA_PYTHONS:
                    continue
                try:
                    check_extra(python, version, extra, wheel, work, server)
                except Failed as exc:
                    failures.append(f"python{version} [{extra}]: {exc}")
                    logger.info(f"  FAILED: {exc}")
    if failures:
        logger.info("install matrix FAILED:\n" + "\n".join(f"  {f}" for f in failures))
        return 1
    logger.info("install matrix passed in %.0f s", time.monotonic() - started)
    return 0


def find_python(version: str) -> str | None:
    """The interpreter ``python3.X`` names on PATH, or None.

    A pyenv shim on PATH answers only for the versions pyenv selects; then pyenv is asked which
    installed version has the command.
    """
    name = f"python{version}"
    if shutil.which(name) is None:
        return None
    tries = [dict(os.environ)]
    if shutil.which("pyenv"):
        whence = run(["pyenv", "whence", name], check=False).stdout.split()
        tries += [{**os.environ, "PYENV_VERSION": found} for found in whence[-1:]]
    for env in tries:
        answer = run([name, "-c", "import sys; print(sys.executable)"], env=env, check=False)
        if answer.returncode == 0:
            return answer.stdout.strip()
    return None


def check_extra(
    python: str, version: str, extra: str, wheel: Path, work: Path, server: S3Server
) -> None:
    venv = work / f"py{version}-{extra}"
    shutil.rmtree(venv, ignore_errors=True)
    run([python, "-m", "venv", str(venv)])
    pip = run([str(venv / "bin" / "python"), "-m", "pip", "--version"]).stdout.split()[1]
    seconds = pip_install(venv, f"{wheel}[{extra}]")
    logger.info(f"python{version}, pip {pip}: [{extra}] installed in {seconds:.0f} s")
    home = work / f"home-{version}-{extra}"
    if extra == "cli":
        logger.info(f"  {check_help(venv, home)}")
        logger.info(f"  {round_trip(venv, home, server)}")
        if version == REQUIRED:
            check_dtool_s3_beside(venv, home, server)
    elif extra == "snakemake":
        logger.info(f"  {check_snakemake(venv, home)}")
    else:
        logger.info(f"  {check_airflow(venv, home)}")


def pip_install(venv: Path, *requirements: str) -> float:
    """``pip install`` as the README says (pip's cache is used); return the seconds it took."""
    log = venv.parent / f"{venv.name}.pip.log"
    started = time.monotonic()
    with log.open("a") as out:
        try:
            result = subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", *requirements],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=pip_env(),
                timeout=PIP_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            wanted = " ".join(requirements)
            raise Failed(f"pip install {wanted} took over {PIP_TIMEOUT} s") from None
    if result.returncode != 0:
        lines = [line for line in log.read_text().splitlines() if not line.startswith(_PIP_NOISE)]
        raise Failed(f"pip install {' '.join(requirements)} failed:\n" + "\n".join(lines[-20:]))
    return time.monotonic() - started


def pip_env() -> dict[str, str]:
    """This machine's pip settings and cache (HOME), without a Python or constraints of ours."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_CONSTRAINT"))
    }


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a new user: no settings of this machine's dtool, AWS or Python."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "DTOOL_", "PYTHON", "VIRTUAL_ENV"))
    }
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true", **extra}


def run(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    quiet: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a command; with ``check`` it must exit 0, and with ``quiet`` print nothing on stderr."""
    result = subprocess.run(
        list(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=900, check=False
    )
    if check and (result.returncode != 0 or (quiet and result.stderr)):
        raise Failed(
            f"{Path(argv[0]).name} {' '.join(argv[1:])} exited "
            f"{result.returncode}\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
        )
    return result


def commands(help_text: str) -> Iterator[str]:
    """The command names of a click group's ``--help``."""
    listing = help_text.partition("\nCommands:\n")[2]
    for line in listing.splitlines():
        match = _COMMAND.match(line)
        if match:
            yield match.group(1)


def check_help(venv: Path, home: Path) -> str:
    """``dtool --help``, the ``--help`` of every command it lists and of every ``dtool s3`` command.

    The deprecated commands of dtool's own plugins (``dtool overlay ...``) say so on stderr; that
    notice is all they may print there.
    """
    dtool = str(venv / "bin" / "dtool")
    env = user_env(home)

    def helped(*path: str) -> str:
        result = run([dtool, *path, "--help"], env=env, cwd=home, quiet="overlay" not in path)
        notice = [line for line in result.stderr.splitlines() if "deprecated" not in line]
        if notice and notice != ["Use ``dtool overlays`` instead"]:
            raise Failed(f"dtool {' '.join(path)} --help printed on stderr:\n{result.stderr}")
        return result.stdout

    top = helped()
    listed = set(commands(top))
    # dtool-cli marks each plugin it could not load; only dtool-http's scripts may be.
    if top.count("could not load plugin") != len(listed & DTOOL_HTTP_SCRIPTS):
        raise Failed(f"dtool --help lists plugins that could not load:\n{top}")
    if "s3" not in listed:
        raise Failed(f"dtool --help does not list the s3 command group:\n{top}")
    loadable = sorted(listed - DTOOL_HTTP_SCRIPTS)
    for name in loadable:
        helped(name)
    ours = list(commands(helped("s3")))
    for name in ours:
        helped("s3", name)
    return (
        f"dtool --help, {len(loadable)} commands' --help and {len(ours)} of dtool s3: exit 0, "
        f"nothing on stderr (dtool-http's {', '.join(sorted(listed & DTOOL_HTTP_SCRIPTS))} "
        "are its scripts, never loadable as commands)"
    )


def bucket_env(server: S3Server, bucket: str) -> dict[str, str]:
    return {
        f"DTOOL_S3_ENDPOINT_{bucket}": server.endpoint_url,
        f"DTOOL_S3_ACCESS_KEY_ID_{bucket}": server.access_key,
        f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}": server.secret_key,
    }


def round_trip(venv: Path, home: Path, server: S3Server) -> str:
    """Create a dataset on s3://, add items, freeze, verify -f, ``dtool s3 cp`` it back, compare."""
    bucket = f"matrix-{uuid.uuid4().hex[:12]}"
    server.create_bucket(bucket)
    env = user_env(home, **bucket_env(server, bucket), DTOOL_CACHE_DIRECTORY=str(home / "cache"))
    files = {"hello.txt": b"hello\n", "sub/dir/j\u00e4tte.bin": os.urandom(300_000)}
    (home / "src").mkdir(exist_ok=True)

    def dtool(*args: str) -> str:
        return run([str(venv / "bin" / "dtool"), *args], env=env, cwd=home, quiet=True).stdout

    created = dtool("create", "round-trip", f"s3://{bucket}")
    uri = next(w for w in created.split() if w.startswith(f"s3://{bucket}/"))
    for number, (relpath, content) in enumerate(files.items()):
        source = home / "src" / str(number)
        source.write_bytes(content)
        dtool("add", "item", str(source), uri, relpath)
    dtool("freeze", uri)
    if "All good" not in dtool("verify", "-f", uri):
        raise Failed(f"dtool verify -f {uri} did not say 'All good'")
    back = home / f"back-{bucket}"
    back.mkdir()
    dtool("s3", "cp", "-q", uri, str(back))
    for relpath, content in files.items():
        if (back / "round-trip" / "data" / relpath).read_bytes() != content:
            raise Failed(f"item {relpath} differs after the round trip")
    return "round trip on s3:// (create, add item, freeze, verify -f, s3 cp back): identical"


def broker_line(venv: Path, home: Path, server: S3Server) -> str:
    bucket = f"doctor-{uuid.uuid4().hex[:12]}"
    server.create_bucket(bucket)
    env = user_env(home, **bucket_env(server, bucket))
    doctor = run([str(venv / "bin" / "dtool"), "s3", "doctor", f"s3://{bucket}"], env=env)
    return next(line.strip() for line in doctor.stdout.splitlines() if " broker " in line)


def check_dtool_s3_beside(venv: Path, home: Path, server: S3Server) -> None:
    seconds = pip_install(venv, "dtool-s3==0.14.1")
    logger.info(f"  + dtool-s3 0.14.1 beside, installed in {seconds:.0f} s")
    logger.info(f"    doctor: {broker_line(venv, home, server)}")
    logger.info(f"    {round_trip(venv, home, server)}")
    run([str(venv / "bin" / "python"), "-c", DROP_REGISTRATION], env=user_env(home))
    line = broker_line(venv, home, server)
    if not line.startswith("OK   broker      s3:// is served by dtool_s3_core."):
        raise Failed(f"after the README's fix the doctor still says: {line}")
    logger.info(f"    after the README's fix: {line}")
    logger.info(f"    {round_trip(venv, home, server)}")


def check_snakemake(venv: Path, home: Path) -> str:
    bin_dir = venv / "bin"
    env = user_env(home)
    version = run([str(bin_dir / "snakemake"), "--version"], env=env, cwd=home, quiet=True)
    helped = run([str(bin_dir / "snakemake"), "--help"], env=env, cwd=home, quiet=True).stdout
    if "--storage-dtool-" not in helped:
        raise Failed("snakemake --help lists no --storage-dtool-* option: the plugin was not found")
    return (
        f"snakemake {version.stdout.strip()}: the dtool storage plugin is found "
        "(--storage-dtool-* options), nothing on stderr"
    )


def check_airflow(venv: Path, home: Path) -> str:
    env = user_env(home, AIRFLOW_HOME=str(home / "airflow"))
    listed = run(
        [str(venv / "bin" / "airflow"), "providers", "list", "-o", "plain"],
        env=env,
        cwd=home,
        quiet=True,
    ).stdout
    if "dtool-s3-core" not in listed:
        raise Failed(f"airflow providers list does not show dtool-s3-core:\n{listed}")
    return "airflow providers list shows dtool-s3-core, nothing on stderr"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    sys.exit(main(sys.argv[1:]))
