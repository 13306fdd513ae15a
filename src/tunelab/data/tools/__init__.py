"""`tunelab data ...` helpers: convert spreadsheets to training files, register, deduplicate and split them."""
