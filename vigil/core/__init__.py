"""Web shell: dashboard, navigation, language, time zone, site keys."""
