"""`make bench` helpers: `worker` runs each measured client, and the fake, in a process."""
