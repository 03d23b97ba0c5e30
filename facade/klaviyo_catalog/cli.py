"""The `klaviyo-catalog` command line; the console script's entry point is `main`.

It lives in `_cli/`, loaded only by this module, so `import klaviyo_catalog` never pays for it.
"""

from ._cli import main

__all__ = ["main"]
