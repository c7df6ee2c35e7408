"""The Sekisho web portal: templates, static assets and portal handlers."""
