"""The hand-off to the official registries: instructions, confirmations, statements."""
