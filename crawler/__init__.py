"""ccTLD Census: a census of a country-code top-level domain."""

__version__ = "0.1.0"
