"""Huey tasks for webhooks."""
