"""What the store prints: pick slips, receipts and labels, laid out as ESC/POS jobs."""
