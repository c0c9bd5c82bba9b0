"""Administration: client registry services (used by the CLI and the admin console)."""
