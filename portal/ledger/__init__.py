"""The ledger: the ground floor. Batches, accounts, blocks and the append-only journal; the only
code that moves credits (``services``), the refusals (``errors``) and the replay that checks it
all (``verify``). It imports nothing above ``portal.core``."""
