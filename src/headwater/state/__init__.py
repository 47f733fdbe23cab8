"""State: the SQLite state store (.headwater/state.db) and environment operations
(promote, gc)."""
