"""Configuration: typed settings, their defaults and the layered YAML loader."""
