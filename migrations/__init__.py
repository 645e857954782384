"""Alembic migrations, shipped inside the package so an installed copbot can upgrade its database."""
