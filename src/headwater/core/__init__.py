"""Core: what every layer uses. Typed, immutable node definitions, config models, check and
incremental specs, fingerprints, time and schedule arithmetic, secrets, URLs, the worker pool.

Imports nothing of Headwater but :mod:`headwater.errors`."""
