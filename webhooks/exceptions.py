"""The webhooks app's errors: each maps to one HTTP status through the engine's error handler."""
from __future__ import annotations

from jobs.exceptions import InvalidInput


class WebhookUrlRefused(InvalidInput):
    """A URL that deliveries may not go to (400): not https, credentials, or an address inside the network."""
