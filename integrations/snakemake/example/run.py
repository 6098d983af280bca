"""Run the example workflow against a loopback S3 server and check what it produced.

    python integrations/snakemake/example/run.py

Starts a moto S3 server on 127.0.0.1, freezes an input dataset of reads into bucket ``raw-data``,
runs the example Snakefile with the real ``snakemake`` of this virtualenv, then checks that the
dataset ``alignments`` in bucket ``results`` is frozen, passes ``dtool verify`` and holds the
expected bytes. Exits 0 on success, 1 with a one-line reason otherwise.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dtoolcore

from dtool_s3_core import create_dataset, find_dataset, override
from tests.support.servers import S3Server, moto_server

logger = logging.getLogger("snakemake-example")

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
RAW_BUCKET, RESULTS_BUCKET, RESULTS_NAME = "raw-data", "results", "alignments"
READS = {"a": "ACGTACGT\n", "b": "GGGCCCAT\n", "c": "TTTTACGA\n"}
TIMEOUT = 120


def complement(text: str) -> str:
    return text.translate(str.maketrans("ACGT", "TGCA"))


def bucket_env(server: S3Server) -> dict[str, str]:
    """dtool's own per-bucket configuration, which the plugin falls back to."""
    env: dict[str, str] = {}
    for bucket in (RAW_BUCKET, RESULTS_BUCKET):
        env[f"DTOOL_S3_ENDPOINT_{bucket}"] = server.endpoint_url
        env[f"DTOOL_S3_ACCESS_KEY_ID_{bucket}"] = server.access_key
        env[f"DTOOL_S3_SECRET_ACCESS_KEY_{bucket}"] = server.secret_key
    return env


def make_input(workdir: Path) -> str:
    source = workdir / "reads"
    source.mkdir()
    for sample, text in READS.items():
        (source / f"{sample}.fq").write_text(text)
    files = {f"reads/{sample}.fq": source / f"{sample}.fq" for sample in READS}
    return create_dataset("raw-reads", f"s3://{RAW_BUCKET}", files=files)


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise RuntimeError(f"{Path(cmd[0]).name} failed: {lines[-1] if lines else 'no output'}")
    return result.stdout + result.stderr


def check_output(uri: str) -> None:
    dataset = dtoolcore.DataSet.from_uri(uri)
    relpaths = {dataset.item_properties(i)["relpath"]: i for i in dataset.identifiers}
    expected = {f"{sample}.bam": complement(text) for sample, text in READS.items()}
    if set(relpaths) != set(expected):
        raise RuntimeError(f"{uri} holds {sorted(relpaths)}, expected {sorted(expected)}")
    for relpath, text in expected.items():
        content = Path(dataset.item_content_abspath(relpaths[relpath])).read_text()
        if content != text:
            raise RuntimeError(f"item {relpath} of {uri} has the wrong content")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    started = time.monotonic()
    with moto_server() as server, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = {
            **os.environ,
            **bucket_env(server),
            "HOME": str(workdir),
            "DTOOL_CACHE_DIRECTORY": str(workdir / "cache"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        server.create_bucket(RAW_BUCKET)
        server.create_bucket(RESULTS_BUCKET)
        with override(None, **_core_settings(server)):
            raw_uri = make_input(workdir)
        logger.info("input dataset %s (%d reads)", raw_uri, len(READS))
        snakemake = [
            str(BIN / "snakemake"),
            "-c4",
            "--snakefile",
            str(HERE / "Snakefile"),
            "--config",
            f"raw={raw_uri}",
            f"results=s3://{RESULTS_BUCKET}/{RESULTS_NAME}",
        ]
        run(snakemake, env, workdir)
        with override(None, **_core_settings(server)):
            info = find_dataset(f"s3://{RESULTS_BUCKET}", RESULTS_NAME)
            if info is None or not info.frozen:
                raise RuntimeError(f"no frozen dataset '{RESULTS_NAME}' in s3://{RESULTS_BUCKET}")
            run([str(BIN / "dtool"), "verify", info.uri], env, workdir)
            check_output(info.uri)
        rerun = run(snakemake, env, workdir)
        if "Nothing to be done" not in rerun:
            raise RuntimeError("the second run did work again instead of 'Nothing to be done'")
    logger.info(
        "workflow froze %s with %d items: dtool verify passed, bytes match, rerun had nothing "
        "to do (%.1f s)",
        info.uri,
        len(READS),
        time.monotonic() - started,
    )
    return 0


def _core_settings(server: S3Server) -> dict[str, str]:
    return {
        "endpoint_url": server.endpoint_url,
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
    }


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:
        logger.error("example failed: %s", str(exc).splitlines()[0] if str(exc) else exc)
        sys.exit(1)
