"""An OpenAI-compatible HTTP API (`tunelab api`): FastAPI routes over one batching engine thread."""
