"""Data contracts as YAML data (one file per data kind); a package so importlib.resources finds them."""
