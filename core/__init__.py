"""What every layer shares and nothing else: errors and the one reader of user files.

- :mod:`core.errors`: ``ConfidantError`` and kin — errors a user can cause or fix;
- :mod:`core.secrets`: the API keys and URL credentials this process holds, and their
  redaction (in every escaping) from messages, logs and pages;
- :mod:`core.text`: escaping of user, model and file text for Markdown, HTML and plots;
- :mod:`core.reader`: the one reader for uploaded or pasted CSV, TSV, JSONL and line lists,
  with one set of limits and messages.
"""
