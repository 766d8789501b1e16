"""``platewatch dashboard``: a local web page over the MQTT topics the runtime publishes.

``server.py`` owns the state (bounded ring buffers fed by MQTT), the HTTP API and the Server-Sent
Events stream; ``static/`` is the page (plain HTML/CSS/JS, no build step, no CDN).
"""

from edge.dashboard.server import DashboardServer, DashboardState, MqttFeed

__all__ = ["DashboardServer", "DashboardState", "MqttFeed"]
