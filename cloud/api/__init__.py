"""The hub's HTTP API, one module per resource; cloud/app.py puts them together."""
