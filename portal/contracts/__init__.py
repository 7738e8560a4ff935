"""Offtake contracts: a buyer agrees to take tonnes on a schedule of tranches at agreed prices;
stock is reserved for it, delivered tranche by tranche, invoiced and paid.

Layout (each module imports only modules listed above it):

- ``models`` – the tables: contracts, tranches, versions, deliveries, invoices, payments.
- The rules, one responsibility a module:

  - ``common`` – ``ContractError``, finding and locking (why actions cannot deadlock), numbers,
    repeated requests, mail to the buyer and the owner;
  - ``terms`` – reading and checking terms, prices per year;
  - ``reserve`` – reserving stock for the tranches, new stock, releasing;
  - ``invoices`` – issuing, bank and online payments, completion, overdue notices;
  - ``delivery`` – checking and making a delivery;
  - ``drafting`` – drafts, signing, versions, amendments, termination;
  - ``queries`` – read-only lookups for pages, the API and PDFs (coverage, lists, ageing);
  - ``planning`` – supply planning by year.

- ``services`` – the rules' public interface: callers use ``services.deliver(...)`` and the like;
  its docstring says where each rule lives.
- ``forms`` – the web forms; ``pdf`` – contract and invoice documents.
- ``views`` – the ``contracts`` blueprint, its screens in ``views_shared``, ``views_drafts``,
  ``views_confirmations``, ``views_staff``, ``views_invoices``, ``views_documents`` and
  ``views_buyer`` (see its docstring).
- ``api`` – the JSON API; ``cli`` – the scheduled commands.
"""
