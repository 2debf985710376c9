"""The endpoint engine: an OpenAI-compatible chat-completions server (stage.py)."""
