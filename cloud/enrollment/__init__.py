"""Zero-touch enrollment (CONTRACTS section 9): a one-time code made at the hub turns a
freshly installed agent into a configured store.

    settings.py  the `enrollment` section of hub.yaml
    codes.py     making codes and redeeming them, atomically, in the database
    bundle.py    what a store receives: who it is, the hub's keys, its credentials, its config
"""
