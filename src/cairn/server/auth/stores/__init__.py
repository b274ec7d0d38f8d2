"""Where authentication keeps users, tokens and permissions (the tracking database)."""
