"""`shopgate-agent doctor`: what is wrong with this store's Pi, in plain words, each
finding with its fix (CONTRACTS section 9). Checks are grouped by what they look at:
files on this machine (local.py), the devices (devices.py), the links to the broker and
the hub (links.py); run.py puts them in order and prints them."""
