"""Servicing: credit lines, drawdowns, schedules, accrual, repayment, delinquency and classification.

The pure rules live in :mod:`creditfactory.servicing.model`; the ``creditfactory schedule``
command is in :mod:`creditfactory.servicing.cli`. See ``docs/servicing.md``.
"""
