"""Reach: which municipalities the offers reached, per district and statewide."""
