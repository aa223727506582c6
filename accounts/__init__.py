"""User accounts, roles, API tokens and the district scope they grant."""
