"""Widgets and input checks that more than one tab uses (``inputs``: number and upload checks;
``results``: result widgets and table helpers)."""
