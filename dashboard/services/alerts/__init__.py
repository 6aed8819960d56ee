"""Alerts: tell operators about problems once, remind them at most daily, tell them when
each problem is gone, and send one digest instead of a flood.

Detection is a reconciliation, not hooks in the sync path: every minute a worker task
asks each *source* (``problems.SOURCES``: a function per kind that returns the problems
it sees now in the database) and compares the answer with the ``alert`` rows
(``reconcile``). What to say is decided by pure rules (``rules``), worded per channel by
``messages``, and each message to each channel is an ``alert_delivery`` row that a worker
task draining that channel sends, with a timeout and retries (``delivery``, ``channels``):
a slow or dead channel holds one worker thread, and never touches a sync.
"""
