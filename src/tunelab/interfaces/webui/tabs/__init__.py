"""One module per tab; each exposes build(ui: UI) -> None, called inside its gr.Tab."""
