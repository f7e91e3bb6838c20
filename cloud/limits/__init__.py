"""Limits on guessing, shared by every page and route that checks something a caller
might guess (an entry answer, a token, a signed link, a payment id).

- addresses.py: who the client is: the right-most untrusted hop of the proxy chain,
  counted per IPv4 address or IPv6 /64 (pure).
- settings.py: the `limits:` section of hub.yaml and the entry page's door limit.
- counters.py: the counts, atomic in the database (one conditional upsert per count).
- web.py: the aiohttp side: the client of a request, the application's limiter.
"""
