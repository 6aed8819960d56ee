"""Xero: OAuth with tenant connections, the Accounting API client, webhooks.

Not in the registry's BUILTIN yet (nor decorated with ``register``): the lead registers it
once the OAuth callback can store the several organisations one consent may connect.
"""
