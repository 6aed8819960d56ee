"""Huey tasks for tokens."""
