"""ASGI entry point, served by uvicorn: HTTP through Django; WebSockets (ws/events) through the events app.

uvicorn, not daphne: daphne takes in a whole request body before the application sees it and then
holds it in memory (a 100 MB upload raised daphne's peak memory by about 1.2 GB; uvicorn's by
15 MB), so an oversize body could neither be refused early nor kept off the heap.
"""
import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
if not settings.configured:
    # Served over ASGI, Django runs each request's synchronous view on a thread of its own: a
    # persistent connection per thread would outlive its thread unclosed until PostgreSQL runs out
    # of connections. The web server takes its connections from a pool instead (DATABASE_POOL).
    os.environ.setdefault("DATABASE_POOL", "10")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

# The one server (make run, Docker) serves /static/ (admin CSS/JS, API docs) straight from the
# apps' static folders through Django's handler; no collectstatic needed.
from events.routing import websocket_application  # noqa: E402
from jobs.api.bodylimit import BodyLimit  # noqa: E402

application = ProtocolTypeRouter({"http": BodyLimit(ASGIStaticFilesHandler(django_asgi_app)), "websocket": websocket_application()})
