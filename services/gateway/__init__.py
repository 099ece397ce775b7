"""LLM gateway usage: reading LiteLLM and Bedrock logs (``sources``, ``records``), pricing
them (``pricing``), and storing them idempotently with daily rollups (``ingest``)."""
