"""Small shared helpers (atomic I/O, seeding, logging)."""
