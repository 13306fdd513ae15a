"""Pure text functions shared by data, eval kinds and rewards (no model, no torch)."""
