"""OpenLineage facets of the operators, built only when the openlineage provider asks for them.

Datasets are named as the amazon provider's S3 operators name S3 objects: namespace
``s3://<bucket>``, name the dataset's key root (prefix + UUID, as it is in the bucket); a local
dataset or directory is namespace ``file`` with its path. The provider
(``apache-airflow-providers-openlineage``) is optional: it is imported here, and this module only
from the operators' ``get_openlineage_facets_on_complete``, which only that provider calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    Lineage: TypeAlias = OperatorLineage[Any, Any]

#: (namespace, name) of one OpenLineage dataset.
Location = tuple[str, str]


def operator_lineage(inputs: Iterable[Location], outputs: Iterable[Location]) -> Lineage:
    """The OperatorLineage with these input and output datasets."""
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(
        inputs=[Dataset(namespace=ns, name=name) for ns, name in inputs],
        outputs=[Dataset(namespace=ns, name=name) for ns, name in outputs],
    )
