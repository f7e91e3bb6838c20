"""Self-checkout payments taken through the hub (issue 6): see cloud/payments/service.py."""
