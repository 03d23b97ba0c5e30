"""The klaviyo-catalog command line, and the escaping of what it shows."""
