"""People, roles, sign-in with two-factor and lock-out."""
