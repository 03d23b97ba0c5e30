"""Shared test helpers: the stand-ins for Klaviyo, the virtual clock, documents, the sync/async
runner.
"""
