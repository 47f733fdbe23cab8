"""Importers: other tools' projects converted into Headwater projects.

>>> from headwater.importers import import_dbt
>>> report = import_dbt("jaffle_shop", "jaffle_hw")   # doctest: +SKIP
>>> print(report.to_markdown())                       # doctest: +SKIP
"""

from __future__ import annotations

from headwater.importers.dbt import import_dbt
from headwater.importers.dbt_project import DbtImportError
from headwater.importers.report import ImportReport, Issue

__all__ = ["DbtImportError", "ImportReport", "Issue", "import_dbt"]
