"""`tunelab webui`: the workbench in the browser, on the CLI's own code paths (see docs/webui.md)."""
