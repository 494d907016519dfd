"""One module per tab. Each has ``create_<tab>_tab(ctx)``, which lays out the page and wires
the methods of a ``<Tab>Handlers(ctx)`` class; the class lives in ``<tab>_handlers.py`` when
both would not fit in one file. A tab's History view is its ``render_<kind>(run) -> dict``.

- :mod:`ui.tabs.generate`: one answer with its token entropy trace;
- :mod:`ui.tabs.semantic`, :mod:`ui.tabs.semantic_handlers`: semantic entropy — ask, paste,
  evaluate a dataset;
- :mod:`ui.tabs.inv`: Inv-Entropy, with the offline mode;
- :mod:`ui.tabs.cip`, :mod:`ui.tabs.cip_handlers`: 20 Questions with C-IP, and its benchmark
  (:mod:`ui.tabs.cip_benchmark`) and calibration in short steps (:mod:`ui.tabs.cip_calibration`);
- :mod:`ui.tabs.judge`, :mod:`ui.tabs.judge_handlers`: annotation beside the judge, agreement,
  export, consistency; and its reliability report (:mod:`ui.tabs.judge_reliability`);
- :mod:`ui.tabs.history`: past runs reopened from the database, and exports.
"""
