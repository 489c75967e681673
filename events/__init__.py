"""Live job events over one WebSocket endpoint (Channels on Redis)."""
