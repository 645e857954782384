"""The digest: what happened, what was shared, what is coming — posted once per period, also as Atom."""
