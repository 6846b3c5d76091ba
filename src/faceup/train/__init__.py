"""Training code. Imports torch; only `faceup train` imports this package."""
