"""The DNS stage: enumerate a zone into the census."""
