"""Maintenance scripts that build what the demo ships; nothing here runs inside the demo."""
