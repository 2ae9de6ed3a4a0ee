"""Execution backends that run compiled strategies and batch scoring over many customers.

``local`` streams a Polars LazyFrame through scores and a strategy plan into Parquet with
bounded memory; ``spark`` does the same on a Spark cluster (or ``local[2]``), with the same
plan compiled to Spark SQL and models applied with ``mapInArrow``. Both take their scores as
:class:`Scoring` values, so this package knows no model registry: the caller resolves models and
hands over expressions and predict functions.
"""

from creditfactory.engines.scoring import Scoring, predict_batch, with_scores

__all__ = ["Scoring", "predict_batch", "with_scores"]
