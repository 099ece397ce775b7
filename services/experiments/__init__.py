"""Comparing MLflow runs: search, tables, histories and charts for the Experiments page."""
