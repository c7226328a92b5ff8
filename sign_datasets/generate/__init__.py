"""TFDS generation: the builder base and the two runners of a plan (local, Beam)."""
