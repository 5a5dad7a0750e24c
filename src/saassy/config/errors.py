"""The one error of configuration: a setting or the catalog cannot be used."""


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and where it came from."""
