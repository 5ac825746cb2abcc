"""The benchmark's regimes, one module each (``a_iris`` … ``f_populations``), and ``common``, what they share.

Each regime module's ``measure(config)`` runs the regime and returns its results (a JSON-ready dict with its
``targets``); ``benchmarks/report.py`` turns the results into the Markdown table.
"""
