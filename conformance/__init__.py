"""The cache contract (C1-C16, see DESIGN.md) as pytest tests, one module per clause group."""
