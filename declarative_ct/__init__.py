"""declarative-ct: a container manager with runc's libcontainer lifecycle and a declarative reconciler."""

__version__ = "0.1.0"
