"""WebSocket routes and the authenticated application config.asgi mounts."""
from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from django.urls import path

from events.consumers import EventsConsumer
from events.middleware import ApiKeyMiddleware

websocket_urlpatterns = [path("ws/events", EventsConsumer.as_asgi())]


def websocket_application() -> Any:
    """Session auth (AuthMiddlewareStack), then the `?api_key=` middleware, then the routes."""
    from channels.routing import URLRouter

    return AuthMiddlewareStack(ApiKeyMiddleware(URLRouter(websocket_urlpatterns)))
