"""The alert tables by name (made in cloud/db/alert_tables.py, schema version 7)."""

from __future__ import annotations

from cloud.db.tables import ALERT_TABLES

alert_incidents, alert_queue, alert_messages, alert_robots = ALERT_TABLES
