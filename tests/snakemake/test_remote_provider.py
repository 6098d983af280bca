"""``RemoteProvider``: its import path, its keywords (Snakemake 7's names mapped with a warning,
anything else refused), the freeze marker as an input without warnings, and formatted log lines
in a real Snakemake run."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import pytest
from snakemake_storage_plugin_dtool.remote import SETTINGS, SNAKEMAKE7_NAMES

from dtool_s3_core.snakemake import RemoteProvider
from tests.conftest import VENV_BIN, Dtool
from tests.support.servers import S3Server

from .conftest import Workflow, dataset_items, dtool_env, frozen_dataset


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_the_core_imports_neither_snakemake_nor_the_plugin() -> None:
    result = python(
        "import sys, dtool_s3_core, dtool_s3_core.snakemake\n"
        "print(sorted(m for m in sys.modules if m.startswith('snakemake')))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_the_plugin_the_import_is_one_line_naming_the_extra() -> None:
    result = python(
        "import sys\n"
        "sys.modules['snakemake_storage_plugin_dtool'] = None\n"
        "try:\n"
        "    from dtool_s3_core.snakemake import RemoteProvider\n"
        "except ImportError as exc:\n"
        "    print(str(exc))\n"
        "    print(exc.__suppress_context__)\n"
    )
    assert result.returncode == 0, result.stderr
    message, suppressed = result.stdout.strip().split("\n")
    assert message.endswith("install dtool-s3-core[snakemake]")
    assert "snakemake_storage_plugin_dtool" in message
    assert suppressed == "True"


def test_the_shim_gives_the_plugins_class() -> None:
    from snakemake_storage_plugin_dtool import remote

    assert RemoteProvider is remote.RemoteProvider
    import dtool_s3_core.snakemake as shim

    with pytest.raises(AttributeError, match="no attribute 'Other'"):
        _ = shim.Other


@pytest.mark.parametrize(("old", "new"), sorted(SNAKEMAKE7_NAMES.items()))
def test_snakemake7_keywords_map_to_ours_with_a_warning(old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=rf"RemoteProvider\({old}=\.\.\.\).*use {new}="):
        provider = RemoteProvider(**{old: "value"})
    assert provider._settings == {new: "value"}


def test_documented_keywords_are_taken_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        provider = RemoteProvider(
            keep_local=True, retrieve=False, **{name: "1" for name in SETTINGS}
        )
    assert provider._settings == {name: "1" for name in SETTINGS}
    assert (provider.keep_local, provider.retrieve) == (True, False)


def test_stay_on_remote_is_retrieve_false() -> None:
    with pytest.warns(DeprecationWarning, match="use retrieve=False"):
        provider = RemoteProvider(stay_on_remote=True)
    assert provider.retrieve is False
    with pytest.raises(TypeError, match="both stay_on_remote and retrieve"):
        RemoteProvider(stay_on_remote=True, retrieve=True)


@pytest.mark.parametrize("keyword", ["bogus_option", "is_default", "use_ssl", "config"])
def test_unknown_keywords_are_refused_with_the_valid_names(keyword: str) -> None:
    with pytest.raises(TypeError) as caught:
        RemoteProvider(**{keyword: 42})
    message = str(caught.value)
    assert "\n" not in message
    assert f"unknown keyword '{keyword}'" in message
    for name in ("keep_local", "retrieve", *SETTINGS, *SNAKEMAKE7_NAMES):
        assert name in message


def test_a_setting_given_twice_is_refused() -> None:
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="'endpoint_url' twice"):
        RemoteProvider(endpoint_url="http://a", host="http://b")


def test_frozen_refuses_other_keywords() -> None:
    with pytest.raises(TypeError, match=r"freeze_marker\(uri, readme=\.\.\.\)"):
        RemoteProvider().frozen("s3://bucket/results", title="x")


# Snakemake 7 keywords, the secret written into the Snakefile (as Snakemake 7 users did), and the
# marker as an input of `rule all`.
MIGRATED = """
from dtool_s3_core.snakemake import RemoteProvider

S3 = RemoteProvider(access_key_id="{access}", secret_access_key="{secret}", host="{endpoint}")

rule all:
    input: S3.frozen("s3://{res}/migrated")

rule make:
    output: S3.remote("s3://{res}/migrated/{{n}}.txt")
    shell: "echo {{wildcards.n}} > {{output}}"

rule freeze:
    input: S3.remote(expand("s3://{res}/migrated/{{n}}.txt", n=["a", "b"]), stay_on_remote=True)
    output: S3.freeze_marker("s3://{res}/migrated", readme="project: migrated\\n")
"""


def test_a_snakemake7_snakefile_runs_with_warnings_and_formatted_log_lines(
    moto: S3Server, results_bucket: str, workflow: Workflow, tmp_path: Path
) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    workflow.write(
        MIGRATED.format(
            access=moto.access_key, secret=canary, endpoint=moto.endpoint_url, res=results_bucket
        )
    )

    result = workflow.run("-c1")

    output = result.stdout + result.stderr
    uri = frozen_dataset(moto, results_bucket, "migrated")
    assert dataset_items(moto, uri) == {"a.txt": b"a\n", "b.txt": b"b\n"}
    for old, new in (
        ("access_key_id", "access_key"),
        ("secret_access_key", "secret_key"),
        ("host", "endpoint_url"),
    ):
        assert f"RemoteProvider({old}=...) is Snakemake 7's name: use {new}=... instead" in output
    assert "remote(stay_on_remote=...) is Snakemake 7's name: use retrieve=False" in output
    # Snakemake's logger drops %-style arguments: the plugin's lines must arrive formatted.
    assert f"Created proto dataset 'migrated' ({uri})" in output
    assert f"Froze dataset 'migrated' ({uri})" in output
    assert "%s" not in output
    assert "only valid for" not in output
    assert canary not in output + workflow.logs()
    dtool = Dtool(
        VENV_BIN, {**dtool_env(moto, results_bucket), "DTOOL_CACHE_DIRECTORY": str(tmp_path / "c")}
    )
    assert "All good" in dtool("verify", uri)


def test_every_log_call_of_the_plugin_is_preformatted() -> None:
    """Snakemake's handlers print a record's raw ``msg``: %-style arguments would be lost."""
    import snakemake_storage_plugin_dtool

    levels = {"debug", "info", "warning", "error", "exception", "critical", "log"}
    calls = []
    for path in Path(snakemake_storage_plugin_dtool.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in levels
                and "logger" in ast.unparse(node.func.value)
            ):
                calls.append((path.name, node.lineno, len(node.args)))
    assert calls, "the plugin logs nothing?"
    assert [call for call in calls if call[2] != 1] == []


PLUGIN_DIR = Path(__file__).parents[2] / "integrations" / "snakemake"


def test_readme_lists_the_keywords_the_code_takes() -> None:
    readme = (PLUGIN_DIR / "README.md").read_text()
    section = readme.split("### `RemoteProvider` keywords", 1)[1].split("###", 1)[0]
    for name in SETTINGS:
        assert f"`{name}`" in section, name
    table = readme.split("### Migrating from Snakemake 7's S3 provider", 1)[1].split("\n## ", 1)[0]
    for old, new in SNAKEMAKE7_NAMES.items():
        assert f"`{old}`" in table and f"`{new}`" in table, old
    for flag in re.findall(r"--storage-dtool-[a-z-]+", readme):
        assert flag.removeprefix("--storage-dtool-").replace("-", "_") in SETTINGS, flag


def test_catalogue_docs_exist_without_relative_links() -> None:
    # The plugin catalogue renders docs/intro.md and docs/further.md outside the repository.
    for name in ("intro.md", "further.md"):
        text = (PLUGIN_DIR / "docs" / name).read_text()
        assert text.strip()
        assert not re.findall(r"\]\((?!https://)", text), name
