"""The hub's pages for people: the customer entry page (entry.py) that a door poster's QR
opens. Server-rendered HTML (Jinja2), plain forms, no JavaScript."""
