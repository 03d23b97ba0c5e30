"""`python -m klaviyo_catalog`: the same command as `klaviyo-catalog`."""

from .cli import main

raise SystemExit(main())
