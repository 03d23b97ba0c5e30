"""The public calls and what they return: every operation, options, arguments, results, types and
help().
"""
