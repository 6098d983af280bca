"""Which installed storage broker dtoolcore gives ``s3://`` URIs: ``dtool s3 doctor``'s broker line.

dtool-s3 registers a broker for ``s3://`` too. dtoolcore loads every ``dtool.storage_brokers``
entry point in the order Python lists the installed distributions and keeps the last class per
URI scheme. dtoolcore up to 3.18 (pkg_resources) sorts a directory's distributions by name, so
``dtool_s3_core`` comes after ``dtool_s3`` and serves; 3.19 (importlib.metadata) takes the file
system's directory order, which nobody chooses (a hash of the names on ext4, newest first on
tmpfs). Only the answer dtoolcore itself gives is trustworthy, so it is asked, not re-derived.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import dtoolcore

from .._s3.probes import Check
from ..broker import S3StorageBroker

#: How to let this package serve ``s3://`` when dtool-s3 is installed beside it (README "Install").
FIX = (
    "pip uninstall dtool-s3, or, if a package needs it, remove its registration "
    "(README, Install: dtool-s3 beside)"
)


def broker_check() -> Check:
    """The broker class dtoolcore uses for ``s3://`` and the distribution that registered it."""
    # dtoolcore has no public way to ask; this is the lookup every dtoolcore call on a URI makes.
    serving = dtoolcore._generate_storage_broker_lookup().get(S3StorageBroker.key)
    if serving is None:
        return Check(
            "FAIL",
            "broker",
            "no broker is registered for s3://: reinstall dtool-s3-core "
            "(pip install --force-reinstall --no-deps dtool-s3-core)",
        )
    target = f"{serving.__module__}:{serving.__qualname__}"
    found = [
        ep.dist
        for ep in entry_points(group="dtool.storage_brokers")
        if ep.value == target and ep.dist is not None
    ]
    origin = f"{found[-1].name} {found[-1].version}" if found else "an unknown distribution"
    text = f"s3:// is served by {target} ({origin})"
    if serving is S3StorageBroker:
        return Check("OK", "broker", text)
    return Check("WARN", "broker", f"{text}, not by dtool-s3-core: {FIX}")
