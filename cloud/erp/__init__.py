"""ERP sync: sales, refunds, fees, products and stock to and from the store's ERP."""
