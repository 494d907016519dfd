"""The Gradio app: one page per tab, built in functions from a shared context.

- :mod:`ui.app`: builds the whole app from the tabs;
- :mod:`ui.context`: what every tab shares (backends, store, settings) and the conversion of
  user-caused errors into messages;
- :mod:`ui.guard`: HTTP middleware in front of the app (login lock-out, no API description
  in the pages);
- :mod:`ui.tabs`: one module per tab, with a ``<Tab>Handlers`` class for its events;
- :mod:`ui.plots`: plotly figures, tables and Markdown views built from results (no gradio);
- :mod:`ui.components`: widgets and input checks shared by the tabs.
"""
