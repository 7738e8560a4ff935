"""Background work: the periodic jobs (order expiry, reserve top-ups, overdue reminders, mail,
webhooks) and queued work, run by workers of a kept task queue (Huey), each job done once."""
