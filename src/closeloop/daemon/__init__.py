"""``closeloop run``, the daemon: :mod:`.run` (start-up checks), :mod:`.lifecycle` (scheduler, HTTP server,
reloads, signals), :mod:`.scheduler`, :mod:`.endpoints` (health, readiness, metrics, early syncs, webhooks),
:mod:`.metrics`, :mod:`.readiness`, :mod:`.reload`, :mod:`.settings`. The state store's writer lock it shares with
``closeloop sync`` is :mod:`closeloop.store.lock`. Nothing below this package imports it, and it never loads a
sandbox."""
