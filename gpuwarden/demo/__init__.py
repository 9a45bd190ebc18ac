"""`make demo`: the incident loop on one machine (run.py). Product code: it never imports the reference
worker (the agent starts it as a process), and everything it starts it stops."""
