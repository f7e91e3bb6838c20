"""Owner notifications: DingTalk custom robots paged by the hub's triggers (docs/alerts.md)."""
