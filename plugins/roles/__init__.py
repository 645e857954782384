"""Participation levels: the CoP bulb, moved by explainable rules and by moderators, mirrored on platforms."""
