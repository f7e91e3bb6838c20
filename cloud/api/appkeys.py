"""What the handlers find on the application and the request."""

from __future__ import annotations

from aiohttp import web

from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.db.principals import Principal
from cloud.event_dispatch import EventDispatcher
from cloud.stock.ledger import StockLedger

CONFIG = web.AppKey("config", HubConfig)
DB = web.AppKey("db", Database)
VERSION = web.AppKey("version", str)
PRINCIPAL = web.RequestKey("principal", Principal)
# The stock ledger (cloud/stock/ledger.py), made by the composition root (cloud/root.py).
STOCK_LEDGER = web.AppKey("stock_ledger", StockLedger)
# New events from the stores, to every feature that follows them (cloud/root.py wires it).
EVENTS = web.AppKey("events", EventDispatcher)
