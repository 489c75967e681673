"""ASGI entry point served by daphne: HTTP through Django; WebSockets (ws/events) through the events app."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

# daphne is the only HTTP server (make run, Docker): it serves /static/ (admin CSS/JS, API docs)
# straight from the apps' static folders through Django's handler; no collectstatic needed.
from events.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": ASGIStaticFilesHandler(django_asgi_app), "websocket": websocket_application()})
