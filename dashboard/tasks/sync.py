"""Huey tasks for sync."""
