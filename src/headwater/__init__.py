"""Headwater: data pipelines from plain SQL and Python.

The Python API is the spine of the product::

    import headwater
    project = headwater.Project("shop")
    project.plan()          # what would run and why
    project.run()           # build what changed
    project.table("device_health_daily")   # a pyarrow.Table
"""

from headwater.api import Project
from headwater.errors import HeadwaterError

__all__ = ["HeadwaterError", "Project", "__version__"]
__version__ = "0.1.0"
