"""Export: a trained run as a standalone model (merged safetensors), a GGUF file, or an Ollama model."""
