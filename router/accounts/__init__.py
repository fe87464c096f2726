"""Console accounts and what guards them: users and roles, passwords, login throttling, the signing key."""
