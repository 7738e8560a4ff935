"""Webhooks to buyers: an organisation's endpoints, the events the portal tells them about, and
their signed, retried, logged delivery (``services`` is the interface)."""
