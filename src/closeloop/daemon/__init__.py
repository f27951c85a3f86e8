"""The daemon's parts: settings, state lock, scheduler, webhooks, metrics, readiness, HTTP endpoints, lifecycle."""
