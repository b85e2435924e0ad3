"""The bottom layer: the protocol and its declared capabilities, the state types, and the
leaf helpers (pytrees, validation, placement, live hyperparameters, the compiled step)."""
