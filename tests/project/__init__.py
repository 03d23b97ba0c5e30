"""The project as a newcomer meets it: the README, the examples, the demo, the wheel."""
