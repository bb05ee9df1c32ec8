"""Accounts: users, sessions (refresh tokens), the audit log and the admin user routes."""
