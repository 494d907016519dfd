"""Widgets and input checks that more than one tab uses.

- :mod:`ui.components.inputs`: checks of what a person types or uploads (numbers, uploads);
- :mod:`ui.components.results`: result widgets and small event helpers.
"""
