"""What a hostile or broken server, network or proxy can do: faults, fuzzing, deadlines, bounds,
the key's safety.
"""
