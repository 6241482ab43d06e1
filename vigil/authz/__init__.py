"""The one permission service and access grants."""
