"""Run persistence: the store interface, in-memory and SQLite stores."""
