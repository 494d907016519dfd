"""SQLite through sqlite-utils: the only code that touches the database.

- :mod:`store.db`: the one place that opens SQLite (connections per thread, migrations);
- :mod:`store.runs`: runs of every method, their generations, annotators and sessions;
- :mod:`store.judgements`: human judgements beside the judge's view;
- :mod:`store.eval_cache`: finished questions of dataset evaluations (resume);
- :mod:`store.cip`: C-IP calibrations (and the migration of the 20 Questions tables);
- :mod:`store.games`: 20 Questions games and their turns;
- :mod:`store.export`: CSV and JSONL export that spreadsheets cannot turn into formulas.
"""
