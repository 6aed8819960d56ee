"""Blueprints: thin views that call one service and render one template."""
