"""A single-node Ceph cluster (one mon, one OSD, radosgw) on 127.0.0.1 for the tests.

Ceph's RADOS Gateway is the S3 server many research institutes run, and it enforces what moto
does not: signatures, Content-MD5, public ACLs and the expiry of presigned URLs. The cluster
lives in one directory: its ``ceph.conf``, the monitor's store, a BlueStore OSD on a sparse file,
the admin sockets and one log per daemon. Nothing listens beyond loopback, no authentication
runs between the daemons (``auth none``) and no manager daemon is needed. The daemons run in
the foreground as our children and are stopped by PID.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .servers import (
    CEPH_BINARIES,
    LOOPBACK,
    S3Server,
    _http_answers,
    _spawn,
    _stop,
    _tail,
    free_port,
)

__all__ = ["CephServer", "ceph_server"]

# A cold start takes 2-3 s on an idle machine; a loaded 2-core CI box can take many times that.
CEPH_START_TIMEOUT = 120.0
# Bounds every administrative command; `ceph` would otherwise wait for a dead monitor forever.
_COMMAND_TIMEOUT = 60.0
_MON_CONNECT_TIMEOUT = 30
_BLOCK_SIZE = 16 * 1024**3
# BlueStore's floor for the memory target; the default (4 GiB) is far more than a test needs.
_OSD_MEMORY_TARGET = 896 * 1024**2
_USER = "dtool"
_RGW = "client.rgw.a"


@contextlib.contextmanager
def ceph_server(data_dir: Path | None = None) -> Iterator[CephServer]:
    """Run a fresh single-node Ceph cluster with radosgw's S3 API on 127.0.0.1.

    ``data_dir`` must be empty or not exist yet; it keeps the cluster's store and logs afterwards.
    Without it a temporary directory is used and removed. The S3 user's keys are random.

    :raises RuntimeError: if a Ceph program is missing or a daemon fails to start (with the tail
        of its log)
    """
    programs = _find_programs()
    own_dir = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="dtool-s3-ceph-")) if data_dir is None else data_dir
    try:
        if not own_dir:
            root.mkdir(parents=True, exist_ok=True)
            if any(root.iterdir()):
                raise ValueError(f"the Ceph data directory {root} must be empty")
        cluster = _Cluster(root=root, programs=programs)
        try:
            yield cluster.start()
        finally:
            cluster.stop()
    finally:
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)


def _find_programs() -> dict[str, str]:
    found = {name: shutil.which(name) for name in CEPH_BINARIES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise RuntimeError(
            f"Ceph programs not found on PATH: {', '.join(missing)}; "
            "install them with scripts/install-ceph.sh (Debian packages radosgw, ceph-mon, "
            "ceph-osd, ceph-common)"
        )
    return {name: path for name, path in found.items() if path is not None}


def _ceph_conf(root: Path, *, fsid: str, mon_port: int, rgw_port: int) -> str:
    """Return the ``ceph.conf`` of a one-node cluster kept entirely under ``root``."""
    return f"""\
[global]
fsid = {fsid}
mon host = v2:{LOOPBACK}:{mon_port}
mon initial members = a
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr1 = false
ms bind msgr2 = true
ms bind ipv6 = false
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
run dir = {root}/run
admin socket = {root}/run/$name.asok
pid file = {root}/run/$name.pid
crash dir = {root}/crash
keyring = {root}/keyring
log file = {root}/log/$name.log
log to stderr = false
err to stderr = false
mon cluster log file = {root}/log/cluster.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
# Every map change waits for the next Paxos round (1 s by default); one node has no one to
# batch for, and the OSD's boot and radosgw's pool creation take a dozen rounds.
paxos propose interval = 0.01
paxos min wait = 0.01

[mon]
mon data = {root}/mon

[osd]
osd data = {root}/osd
osd objectstore = bluestore
bluestore block path = {root}/osd-block
bluestore block create = true
bluestore block size = {_BLOCK_SIZE}
bluestore fsck on mount = false
bluestore fsck on mkfs = false
osd memory target = {_OSD_MEMORY_TARGET}
# The OSD opens and closes its block device once per op shard while it boots, and every close
# waits out the AIO thread's poll interval (250 ms).
osd op num shards = 1
bdev aio poll ms = 20

[{_RGW}]
rgw data = {root}/rgw
rgw frontends = beast endpoint={LOOPBACK}:{rgw_port} tcp_nodelay=1
rgw thread pool size = 32
rgw enable usage log = false
# radosgw starts before the OSD is up; its first requests wait for the objecter's next
# tick (5 s by default) to be resent.
objecter tick interval = 0.2
"""


@dataclass(frozen=True)
class CephServer(S3Server):
    """An :class:`S3Server` on Ceph, with access to radosgw's log and run-time settings."""

    data_dir: Path

    @property
    def rgw_log(self) -> Path:
        """radosgw's log file (stderr and its debug output)."""
        return self.data_dir / "log" / f"{_RGW}.log"

    def set_rgw_option(self, option: str, value: str) -> None:
        """Change one of radosgw's settings while it runs, e.g. ``("debug_rgw", "15")``."""
        ceph = shutil.which("ceph") or "ceph"
        subprocess.run(
            [ceph, "--admin-daemon", str(self.data_dir / "run" / f"{_RGW}.asok"),
             "config", "set", option, value],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_COMMAND_TIMEOUT,
            check=True,
        )  # fmt: skip


@dataclass
class _Daemon:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path


class _Cluster:
    """The daemons of one cluster, started in order and stopped in reverse."""

    def __init__(self, root: Path, programs: dict[str, str]) -> None:
        self.root = root
        self.programs = programs
        self.conf = root / "ceph.conf"
        self.daemons: list[_Daemon] = []

    def start(self) -> CephServer:
        deadline = time.monotonic() + CEPH_START_TIMEOUT
        for sub in ("run", "log", "crash", "mon", "osd", "rgw"):
            (self.root / sub).mkdir(exist_ok=True)
        mon_port, rgw_port = free_port(), free_port()
        fsid = str(uuid.uuid4())
        self.conf.write_text(_ceph_conf(self.root, fsid=fsid, mon_port=mon_port, rgw_port=rgw_port))
        monmap = self.root / "monmap"
        self._tool(
            "monmaptool", "--create", "--fsid", fsid,
            "--addv", "a", f"[v2:{LOOPBACK}:{mon_port}]", str(monmap),
        )  # fmt: skip
        self._tool("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(monmap))
        self._daemon("mon.a", "ceph-mon", "-f", "-i", "a")
        osd_uuid = str(uuid.uuid4())
        osd_id = self._ceph("osd", "new", osd_uuid).strip()
        self._tool("ceph-osd", "--mkfs", "-i", osd_id, "--osd-uuid", osd_uuid)
        self._daemon(f"osd.{osd_id}", "ceph-osd", "-f", "-i", osd_id)
        self._daemon(_RGW, "radosgw", "-f", "-n", _RGW, "--no-mon-config")
        endpoint_url = f"http://{LOOPBACK}:{rgw_port}"
        self._wait(lambda: _http_answers(endpoint_url), deadline, f"radosgw on {endpoint_url}")
        access_key = f"dtool-{secrets.token_hex(6)}"
        secret_key = secrets.token_hex(20)
        self._tool(
            "radosgw-admin", "user", "create", f"--uid={_USER}", f"--display-name={_USER}",
            f"--access-key={access_key}", f"--secret-key={secret_key}",
            secret=secret_key,
        )  # fmt: skip
        return CephServer(
            name="ceph",
            endpoint_url=endpoint_url,
            access_key=access_key,
            secret_key=secret_key,
            supports_public_acl=True,
            verifies_signatures=True,
            data_dir=self.root,
        )

    def stop(self) -> None:
        # radosgw first, so that it does not wait for an OSD that is already gone.
        for daemon in reversed(self.daemons):
            _stop(daemon.proc)
        self.daemons.clear()

    def _daemon(self, name: str, program: str, *args: str) -> None:
        log_path = self.root / "log" / f"{name}.log"
        with log_path.open("ab") as log:
            argv = [self.programs[program], "-c", str(self.conf), *args]
            proc = _spawn(argv, log=log, cwd=self.root)
        self.daemons.append(_Daemon(name, proc, log_path))

    def _ceph(self, *args: str) -> str:
        return self._tool("ceph", "--connect-timeout", str(_MON_CONNECT_TIMEOUT), *args)

    def _tool(self, program: str, *args: str, secret: str | None = None) -> str:
        argv = [self.programs[program], "-c", str(self.conf), *args]
        try:
            result = subprocess.run(
                argv,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"{program} {args[0]} did not finish within {_COMMAND_TIMEOUT:.0f} s"
                f"{self._daemon_tails()}"
            ) from None
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            if secret:
                output = output.replace(secret, "<secret>")
            raise RuntimeError(
                f"{program} {args[0]} failed with exit code {result.returncode}:\n"
                f"{output[-2000:]}{self._daemon_tails()}"
            )
        return result.stdout

    def _wait(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        while True:
            for daemon in self.daemons:
                if daemon.proc.poll() is not None:
                    raise RuntimeError(
                        f"Ceph daemon {daemon.name} exited with code {daemon.proc.returncode} "
                        f"while waiting for {what}{self._daemon_tails()}"
                    )
            if ready():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{what} did not become ready within {CEPH_START_TIMEOUT:.0f} s"
                    f"{self._daemon_tails()}"
                )
            time.sleep(0.2)

    def _daemon_tails(self) -> str:
        return "".join(
            f"\n--- {daemon.name} log tail ({daemon.log_path}):\n{_tail(daemon.log_path)}"
            for daemon in self.daemons
        )
