"""`headwater init`: write a runnable example project with generated data."""

from headwater.scaffold.template import init_project

__all__ = ["init_project"]
