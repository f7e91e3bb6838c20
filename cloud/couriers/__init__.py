"""The courier at the door (骑手扫码取货; CONTRACTS section 8): the rider scans the door
poster, picks their order from the store's open ones, types the last 4 digits of the
platform order number, and the door opens, with the pick list on their phone.

    tail.py   the last 4 digits: taken from an order number, typed, compared
    door.py   listing a door's open orders and claiming one (limits, pass, remote entry)
"""
