"""One MQTT connection kept alive, and the broker settings both programs share."""
