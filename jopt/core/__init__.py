"""The bottom layer: the protocol and its declared capabilities, the state types, and the
leaf helpers (pytrees, validation, hyperparameter declarations, frozen configurations,
placement, live hyperparameters, the compiled step)."""
