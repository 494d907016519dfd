"""Figures, tables and Markdown views built from results: plotly only, no gradio, so each can
be tested on its own.

- :mod:`ui.plots.trace`: the token entropy trace and highlighted text;
- :mod:`ui.plots.semantic`: semantic entropy and the evaluation harness;
- :mod:`ui.plots.calibration`: the harness's calibration table and reliability diagram;
- :mod:`ui.plots.inv`: Inv-Entropy runs;
- :mod:`ui.plots.cip`: 20 Questions games and benchmarks;
- :mod:`ui.plots.judge`: the judge's distributions, agreement and consistency;
- :mod:`ui.plots.reliability`: the judge reliability report.
"""
