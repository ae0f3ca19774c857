"""The logic of the command-line tools in ``scripts/`` (which are thin wrappers), importable and testable."""
