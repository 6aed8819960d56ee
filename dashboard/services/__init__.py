"""Services: the only layer that combines the database, Intuit and the sync core."""
