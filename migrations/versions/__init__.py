"""The migration scripts, in revision order."""
