"""The ``dct`` command line."""
