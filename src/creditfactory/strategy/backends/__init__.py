"""Translators from the typed expression tree (:mod:`creditfactory.strategy.ir`) to each engine.

* :mod:`.polars` — Polars expressions, for frames of any size (batch mining);
* :mod:`.python` — plain Python closures, for one row at a time (online decisions);
* :mod:`.spark` — Spark SQL text, for a cluster.

Each translates the same nodes with the same NULL rules; the parity tests hold them to it.
"""
