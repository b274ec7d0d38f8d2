"""Framework flavors: how each library's models are written to and read from a model folder."""
