"""Finite groups as data, their characters and representations, and their actions on data."""
