"""The census spider."""
