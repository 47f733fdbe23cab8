"""Integrations: observers of runs (OpenLineage). Nothing below imports them."""
