"""Polls: native MSC3381 polls on Matrix, native or button polls on Discord, numbered on the console."""
