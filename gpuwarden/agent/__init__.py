"""The daemon: collector registry, runner, HTTP server, systemd integration."""
