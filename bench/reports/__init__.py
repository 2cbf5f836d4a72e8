"""Comparative reports from the MLflow store: leaderboard tables with uncertainty, plots,
retrieval galleries and a self-contained HTML report (``bench leaderboard``).

Everything is read fresh from the store on every call; nothing is cached between calls.
"""
