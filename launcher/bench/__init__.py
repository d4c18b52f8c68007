"""Measurements of loader settings (``bench-data``). Launch side: may import anything."""
