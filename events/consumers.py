"""The events WebSocket: clients subscribe to topics, and group messages are forwarded to them."""
from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from events import topics
from events.exceptions import UnknownTopic

#: Close code for a connection without a valid session or API key (accepted first so browsers see it).
UNAUTHENTICATED = 4401
#: Subscriptions one connection may hold.
MAX_SUBSCRIPTIONS = 100


class EventsConsumer(AsyncJsonWebsocketConsumer):
    """Subscribes and forwards; never writes. Messages: {"action": "subscribe"|"unsubscribe", "topic", "id"}."""

    subscriptions: set[tuple[str, str]]

    async def connect(self) -> None:
        """Accept an authenticated user; otherwise accept and close with 4401."""
        self.subscriptions = set()
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)

    async def disconnect(self, code: int) -> None:
        """Leave every group this connection joined."""
        for kind, id in list(getattr(self, "subscriptions", ())):
            await self.channel_layer.group_discard(topics.group_name(kind, id), self.channel_name)
        self.subscriptions = set()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Dispatch a client's subscribe or unsubscribe."""
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "message": "expected a JSON object"})
            return
        action, kind, id = content.get("action"), content.get("topic"), content.get("id")
        if action not in ("subscribe", "unsubscribe"):
            await self.send_json({"type": "error", "message": "action must be 'subscribe' or 'unsubscribe'"})
            return
        if not isinstance(kind, str) or not isinstance(id, (str, int)) or isinstance(id, bool) or not str(id):
            await self.send_json({"type": "error", "message": "'topic' and 'id' are required"})
            return
        id = str(id)
        if action == "unsubscribe":
            await self._unsubscribe(kind, id)
        else:
            await self._subscribe(kind, id)

    async def _subscribe(self, kind: str, id: str) -> None:
        try:
            allowed = await database_sync_to_async(topics.can_see)(kind, self.scope["user"], id)
        except UnknownTopic:
            await self.send_json({"type": "error", "topic": kind, "id": id, "message": f"unknown topic {kind!r}; one of {', '.join(topics.kinds())}"})
            return
        if not allowed:
            # The same answer for "not yours" and "does not exist": no probing for ids.
            await self.send_json({"type": "error", "topic": kind, "id": id, "message": f"not allowed to subscribe to {kind} {id}"})
            return
        if (kind, id) not in self.subscriptions:
            if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
                await self.send_json({"type": "error", "topic": kind, "id": id, "message": f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection"})
                return
            await self.channel_layer.group_add(topics.group_name(kind, id), self.channel_name)
            self.subscriptions.add((kind, id))
        await self.send_json({"type": "subscribed", "topic": kind, "id": id})

    async def _unsubscribe(self, kind: str, id: str) -> None:
        if (kind, id) in self.subscriptions:
            await self.channel_layer.group_discard(topics.group_name(kind, id), self.channel_name)
            self.subscriptions.discard((kind, id))
        await self.send_json({"type": "unsubscribed", "topic": kind, "id": id})

    async def event_forward(self, message: dict[str, Any]) -> None:
        """Group message "event.forward": send its event to the client as it is."""
        await self.send_json(message["event"])
