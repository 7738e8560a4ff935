"""Requests for quote: a buyer asks for more than it can order from the catalog (above its
organisation's order limit or the stock of the chosen batches), sales staff discuss it with the
buyer, decline it with a reason, or turn it into an offtake contract draft in one step.

- ``models`` – the tables: requests, their delivery schedule, their messages.
- ``reading`` – reading and checking what a buyer asks for (``parse_request``).
- ``services`` – creating, replying, assigning, declining and converting (the contract draft is
  made by :func:`portal.contracts.services.create_draft`, the only way a contract is built).
- ``forms``, ``views`` (the buyer's pages) and ``views_staff`` (the sales desk).
"""
