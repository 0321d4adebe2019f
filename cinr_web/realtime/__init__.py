"""WebSocket consumers that stream run metrics and INR-set fit progress (Django Channels)."""
