"""The footprint calculator: emission factor sets, estimates for events and offices, and the
tonnes to buy to offset them."""
