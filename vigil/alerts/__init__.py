"""Alerts: one open alert per subject and cause, routed to the people who must act."""
