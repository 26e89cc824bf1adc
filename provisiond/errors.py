"""One root exception; a few subclasses that callers tell apart."""


class ProvisiondError(Exception):
    """Root of every error provisiond raises on purpose."""


class ConfigError(ProvisiondError):
    """A setting or config file is wrong."""


class ValidationError(ProvisiondError):
    """Bad input, refused at the door. ``field`` names what was wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(ProvisiondError):
    """An id or name that does not exist."""


class PanelError(ProvisiondError):
    """A panel folder is broken or does not support what was asked."""


class CryptoError(ProvisiondError):
    """A stored secret cannot be decrypted (wrong key, tampered value)."""


class StateError(ProvisiondError):
    """An action that the service's or job's current state does not allow."""


class Conflict(StateError):
    """A request that contradicts what is known (an order ref replayed with other data).
    ``fields`` names what differs."""

    def __init__(self, fields: list[str], message: str):
        super().__init__(message)
        self.fields = fields
