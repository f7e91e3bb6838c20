"""The tables of owner notifications (cloud/alerts), schema version 7.

Built by a function so that tables.py and the migration step that adds them to an older
database make exactly the same tables; a later change to them gets a step of its own.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

TIME = String(32)
ID = String(64)
SERIAL = BigInteger().with_variant(Integer, "sqlite")


def alert_tables(md: MetaData) -> tuple[Table, Table, Table, Table]:
    # One row per thing that can go wrong ("store_offline:demo-001"): open while it is
    # wrong, resolved once it is right again. Opening a resolved or new row is what pages
    # the owner, and that is a conditional write, so hubs sharing the database page once.
    alert_incidents = Table(
        "alert_incidents",
        md,
        Column("key", String(300), primary_key=True),
        Column("kind", String(32), nullable=False),
        Column("store_id", ID, nullable=False),  # "" for the hub as a whole
        Column("state", String(16), nullable=False),  # open | resolved
        Column("title", Text, nullable=False),
        Column("opened_at", TIME, nullable=False),
        Column("resolved_at", TIME, nullable=True),
        Column("times", Integer, nullable=False),  # how many times it opened
        Index("ix_alert_incidents_kind_state", "kind", "state"),
    )
    # Each alert as owed to one robot; `message_id` names the message that carried it.
    # Pending until a message that holds it is taken by DingTalk: never dropped.
    alert_queue = Table(
        "alert_queue",
        md,
        Column("id", SERIAL, primary_key=True, autoincrement=True),
        Column("robot_id", ID, nullable=False),
        Column("incident_key", String(300), nullable=False),
        Column("store_id", ID, nullable=False),
        Column("kind", String(32), nullable=False),
        Column("title", Text, nullable=False),
        Column("text", Text, nullable=False),  # markdown
        Column("created_at", TIME, nullable=False),
        Column("status", String(16), nullable=False),  # pending | sent
        Column("attempts", Integer, nullable=False),
        Column("last_error", Text, nullable=True),
        Column("message_id", SERIAL, nullable=True),
        Column("sent_at", TIME, nullable=True),
        Index("ix_alert_queue_robot_status", "robot_id", "status", "id"),
    )
    # Every message posted to a robot, taken or not: the per-minute limit is counted
    # from here across hubs, and failures stay visible.
    alert_messages = Table(
        "alert_messages",
        md,
        Column("id", SERIAL, primary_key=True, autoincrement=True),
        Column("robot_id", ID, nullable=False),
        Column("at", TIME, nullable=False),
        Column("alerts", Integer, nullable=False),
        Column("title", Text, nullable=False),
        Column("status", String(16), nullable=False),  # sending | sent | failed
        Column("errcode", Integer, nullable=True),
        Column("error", Text, nullable=True),
        Column("hub", String(100), nullable=False),
        Index("ix_alert_messages_robot_at", "robot_id", "at"),
    )
    # One row per configured robot: the lease that lets one hub at a time send for it
    # (so the limit holds with two hubs), and its back-off after failures.
    alert_robots = Table(
        "alert_robots",
        md,
        Column("id", ID, primary_key=True),
        Column("lease_owner", String(100), nullable=False),
        Column("lease_until", TIME, nullable=False),
        Column("paused_until", TIME, nullable=False),
        Column("failures", Integer, nullable=False),  # consecutive failed posts
        Column("last_error", Text, nullable=True),
        Column("last_sent_at", TIME, nullable=True),
        Column("updated_at", TIME, nullable=False),
    )
    return alert_incidents, alert_queue, alert_messages, alert_robots
