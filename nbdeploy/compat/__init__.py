"""Compatibility layers for code written against other SDKs (``compat.azureml``: Azure ML SDK v1)."""
