"""The spec and the generated package: curation, generation, revisions, conformance with Klaviyo's
published spec.
"""
