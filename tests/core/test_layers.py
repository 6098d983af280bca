"""The layers of dtool_s3_core (see the docstrings of its private packages), checked on the source.

The imports are read with ``ast`` rather than observed at run time, so that an import inside a
function or under ``if TYPE_CHECKING:`` counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = "dtool_s3_core"
INTEGRATIONS = (
    ROOT / "integrations" / "snakemake" / "snakemake_storage_plugin_dtool",
    ROOT / "integrations" / "airflow" / "dtool_s3_airflow",
)

#: Each unit of the core (a top-level module or package of it) may import its own modules and
#: those of lower ranks; units of equal rank are independent of each other.
RANK = {
    "errors": 0,
    "config": 1,
    "_format": 1,
    "_s3": 2,
    "_dataset": 3,
    "_ops": 4,
    "api": 5,
    "broker": 5,
    "cli": 6,
    "snakemake": 6,
    "__init__": 7,
}
AWS_LIBRARIES = {"boto3", "botocore", "awscrt", "urllib3"}
PUBLIC = {CORE, f"{CORE}.errors", f"{CORE}.config", f"{CORE}.snakemake"}


@dataclass(frozen=True)
class Import:
    """One module named by an import statement (``from . import a, b`` names two)."""

    path: Path
    line: int
    statement: str
    importer: str
    target: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} {self.statement}"


def module_name(path: Path, package_dir: Path) -> str:
    parts = path.relative_to(package_dir.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the core and of the integrations, by dotted name."""
    found = {}
    for package_dir in (ROOT / CORE, *INTEGRATIONS):
        for path in sorted(package_dir.rglob("*.py")):
            found[module_name(path, package_dir)] = path
    return found


def targets(node: ast.Import | ast.ImportFrom, importer: str, path: Path) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = importer.split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        anchor = ".".join(package[: len(package) - node.level + 1])
        base = f"{anchor}.{base}" if base else anchor
    for alias in node.names:
        # ``from package import name`` imports the submodule if there is one, else an attribute.
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in modules() else base


@cache
def imports() -> tuple[Import, ...]:
    found = []
    for importer, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                statement = ast.unparse(node)
                found += [
                    Import(path, node.lineno, statement, importer, target)
                    for target in targets(node, importer, path)
                ]
    return tuple(found)


def assert_no_import(breaks_rule: Callable[[Import], str | None], what: str) -> None:
    """Fail with every import for which ``breaks_rule`` gives a reason, one a line."""
    lines = {f"{found}  ({reason})" for found in imports() if (reason := breaks_rule(found))}
    if lines:
        # pytrace=False: the list is the whole story; the traceback would only repeat it.
        pytest.fail(f"{what}:\n" + "\n".join(sorted(lines)), pytrace=False)


def unit(module: str) -> str | None:
    """The unit of the core that ``module`` belongs to (None outside the core)."""
    parts = module.split(".")
    if parts[0] != CORE:
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def test_only_the_s3_layer_imports_aws_libraries() -> None:
    def rule(found: Import) -> str | None:
        library = found.target.split(".")[0]
        if library in AWS_LIBRARIES and unit(found.importer) != "_s3":
            return f"only {CORE}/_s3/ may import {library}"
        return None

    assert_no_import(rule, f"imports of AWS libraries outside {CORE}/_s3/")


def test_every_unit_of_the_core_has_a_rank() -> None:
    units = {found for name in modules() if (found := unit(name))}
    assert units <= set(RANK), f"units without a rank in RANK: {sorted(units - set(RANK))}"


def test_core_imports_run_downward() -> None:
    def rule(found: Import) -> str | None:
        source, target = unit(found.importer), unit(found.target)
        if source is None or target is None or source == target:
            return None
        if source in RANK and target in RANK and RANK[target] < RANK[source]:
            return None
        return f"{source} may not import {target}"

    assert_no_import(rule, "imports that do not run downward")


def test_integrations_use_only_the_public_modules() -> None:
    def rule(found: Import) -> str | None:
        if unit(found.importer) is None and unit(found.target) and found.target not in PUBLIC:
            return f"{found.target} is not public"
        return None

    assert_no_import(rule, f"integrations importing beyond {sorted(PUBLIC)}")


def test_format_imports_only_errors_of_the_package() -> None:
    def rule(found: Import) -> str | None:
        target = unit(found.target)
        if unit(found.importer) == "_format" and target not in {None, "errors", "_format"}:
            return f"_format may not import {target}"
        return None

    assert_no_import(rule, f"imports of {CORE}/_format/ beyond errors and itself")
