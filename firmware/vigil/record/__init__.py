"""Recording: crash-safe fMP4 segments, their SQLite index, and start-up reconciliation."""
