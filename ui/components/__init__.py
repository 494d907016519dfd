"""Widgets and input checks that more than one tab uses.

- :mod:`ui.components.exports`: export files offered for download: 0600, downloadable by
  their annotator only, for an hour;
- :mod:`ui.components.inputs`: checks of what a person types or uploads (numbers, uploads);
- :mod:`ui.components.prompt`: the "Prompt sent to the model" accordion and what it shows;
- :mod:`ui.components.results`: result widgets and small event helpers;
- :mod:`ui.components.cache`: a thread-safe LRU bounded in count and idle age (what the app
  keeps between requests);
- :mod:`ui.components.jobs`: the per-user cap on queued and running model jobs;
- :mod:`ui.components.reveals`: which viewer saw the judge's numbers for which item (blind
  mode decided on the server);
- :mod:`ui.components.style`: the page's style sheet (tables that never break a number).
"""
