"""One router module per REST resource; ``cairn.server.app`` mounts them."""
