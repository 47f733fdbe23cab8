"""The command line: a thin caller of :class:`headwater.Project`."""
