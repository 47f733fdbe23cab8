"""Headwater: data pipelines from plain SQL and Python.

The Python API is the spine of the product::

    import headwater
    project = headwater.Project("shop")
    project.plan()          # what would run and why
    project.run()           # build what changed
    project.table("device_health_daily")   # a pyarrow.Table

``import headwater`` (or ``headwater.errors``) loads nothing else: :class:`Project` is imported
on first use, so a connector or a test helper does not pull in the whole package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from headwater.errors import HeadwaterError

if TYPE_CHECKING:
    from headwater.api import Project

__all__ = ["HeadwaterError", "Project", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Project":
        from headwater.api import Project

        return Project
    raise AttributeError(f"module 'headwater' has no attribute {name!r}")
