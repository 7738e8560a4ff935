"""The audit log: every state change by a person or the system — who, when, what, before, after."""
