"""Rate limits and retries: the limiters (in memory and Redis), admission, Retry-After and the
server's figures.
"""
