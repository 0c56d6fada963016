"""The declarations of every setting: their type, recipe value, constraints."""
