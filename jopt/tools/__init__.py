"""The top layer: checkpoints, summaries, the train state and sweeps, built on any
transformation through its declared capabilities."""
