"""The sync engine: read → map → link → merge → outbox → write → results → loop."""
